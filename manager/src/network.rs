//! Container networking: network records, per-container network namespaces and the CNI plugins that wire them.
