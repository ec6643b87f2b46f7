"""E-commerce logic (Saleor products and orders, money), free of orchestration and database code."""
