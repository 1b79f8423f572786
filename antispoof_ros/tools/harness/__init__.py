"""One harness for tools and tests: node processes, local-only DDS, process statistics."""
