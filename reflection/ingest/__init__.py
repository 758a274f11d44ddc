"""Import: datasets from files, and reflections made elsewhere adopted as candidates."""
