"""What runs the system: the local stack, and (later) the load balancer and manifests."""
