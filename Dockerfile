# One image for every Dagster process of the aws deployment: the webserver, the daemon and
# the run workers the ECS run launcher starts (each run is a Fargate task of this image);
# and, as the `lambda` target, the analytics API's Lambda function.
#   webserver: dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml
#   daemon:    dagster-daemon run -w workspace.yaml
# deploy/entrypoint.sh renders $DAGSTER_HOME/dagster.yaml from the environment first.

# The bases' repositories are arguments so a machine without a registry can build from local
# stand-ins of the same tags (scripts/build_image); a real build keeps these defaults.
ARG PYTHON_REPOSITORY=python
ARG UV_REPOSITORY=ghcr.io/astral-sh/uv

FROM ${UV_REPOSITORY}:0.13.9 AS uv

# Build stage: uv resolves nothing, it installs exactly uv.lock (no dev group) into /app/.venv
# and compiles the bytecode, so a container starts without writing .pyc files.
FROM ${PYTHON_REPOSITORY}:3.11.7-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --compile-bytecode
COPY analytics_pipeline ./analytics_pipeline
RUN uv sync --frozen --no-dev --no-editable --compile-bytecode

# The analytics API as a Lambda function (`docker build --target lambda`, pushed to the API's
# ECR repository): the same virtual environment, started by the AWS Lambda Runtime Interface
# Client (awslambdaric) with the Mangum handler. Lambda's file system is read-only but /tmp.
FROM ${PYTHON_REPOSITORY}:3.11.7-slim-bookworm AS lambda
RUN groupadd --system --gid 10001 api \
    && useradd --system --uid 10001 --gid api --home-dir /tmp --no-create-home api
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    ANALYTICS_PIPELINE_ENV=aws
WORKDIR /app
COPY --from=build --chown=root:root /app/.venv /app/.venv
USER 10001:10001
# Lambda invokes the function through its runtime API, not a port, and checks its health itself.
# checkov:skip=CKV_DOCKER_2:a Lambda function has no container health check; Lambda restarts failed environments
ENTRYPOINT ["/app/.venv/bin/python", "-m", "awslambdaric"]
CMD ["analytics_pipeline.serving.aws_lambda.handler"]

# Final stage (the default target): the Dagster image. The interpreter, the virtual
# environment and the few files read at run time; no uv, no compilers, no caches.
FROM ${PYTHON_REPOSITORY}:3.11.7-slim-bookworm AS dagster
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /app --no-create-home dagster \
    && mkdir -p /opt/dagster/home \
    && chown dagster:dagster /opt/dagster/home
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    ANALYTICS_PIPELINE_ENV=aws
WORKDIR /app
COPY --from=build --chown=root:root /app/.venv /app/.venv
COPY --chown=root:root workspace.yaml ./
COPY --chown=root:root terraform/tables.json ./terraform/tables.json
COPY --chown=root:root --chmod=755 deploy/entrypoint.sh /usr/local/bin/entrypoint.sh
USER 10001:10001
# ECS defines each container's health check for its own command (the webserver answers /server_info,
# the daemon has no port), so the image declares none.
# checkov:skip=CKV_DOCKER_2:health checks are set per container in the ECS task definitions
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
