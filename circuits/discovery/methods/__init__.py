"""The discovery methods, one module each; `circuits.discovery.registry` lists them by name.

They live in their own package so that `circuits.discovery.acdc`, `.eap`, `.eap_ig` and
`.node_attribution` are the functions, and the modules that define them are not shadowed by them.
"""
