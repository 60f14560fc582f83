//! Spec generation: an image's config plus the user's options become an OCI runtime spec.
