"""The NetBox side: the REST client edge, reading owned state, and applying plans."""
