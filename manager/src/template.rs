//! Docker-style `--format` templates (Go text/template syntax) over JSON values.
