"""What every stage may use: errors, the input log, the local cache folder, deferred writes, streams, image
references, secrets, layer chains and the names both sides of the engine share."""
