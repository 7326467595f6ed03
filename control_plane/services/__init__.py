"""The work behind the routers: tenants, voices, SSML, synthesis, audio."""
