//! Named volumes: records and data directories under the storage root.
