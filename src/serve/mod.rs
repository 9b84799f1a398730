//! The HTTP endpoint of a running watch: `/metrics`, `/report`, `/healthz`.
