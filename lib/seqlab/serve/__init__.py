"""Ray Serve: the route table, the model server, the gateway (with its guard), the application builder.

    routes    every task route, once
    server    ModelServer: one model's deployment
    gateway   Gateway: the HTTP application in front of every model
    guard     request-size limit and API keys
    options   the serving options (flags and build_app arguments), once
    sources   a registry version or a checkpoint
    app       build_app (for serve run / serve deploy), start, the Serve config writer
"""
