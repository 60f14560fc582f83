//! Containers: records under the storage root, the lifecycle driven through the runtime's CLI, and the per-container monitor.
