"""The knowledge layer's pure logic: entity texts, embedders, graph building and retrieval."""
