"""The fabric side: a Kubernetes API or YAML files, both listing Hedgehog objects as plain dicts."""
