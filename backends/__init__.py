"""Backend drivers for enginy-crm-adapter: the interface (:mod:`backends.base`), the registry
(:mod:`backends.registry`), the built-in drivers and the shipped conformance suite
(:mod:`backends.testing`)."""
