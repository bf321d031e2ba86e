"""Content keys: the exact build context, hashed with a stat cache, into per-node keys and input manifests."""
