"""Development tooling, not part of the control-plane runtime (nor of its image).

- `triton_install`, `triton_server`, `triton_cli`: find/lay out Triton, run one server, `tts-gateway triton`
- `devstack`: `tts-gateway up`, the whole service on one machine
- `dev_tenant`: the dev tenant and owner-only dev secrets of `tts-gateway up`

The `tts-gateway` CLI imports these lazily, so the control plane never needs them.
"""
