# The production image: daphne serves HTTP and WebSockets; the same image runs the RQ worker.
# docker-compose.yml wires it to PostgreSQL and Redis. Build: docker build -t django-live-exports .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDIA_ROOT=/app/media

WORKDIR /app

# A fixed, unprivileged user: the web server and the worker never run as root.
RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# Dependencies first, so that a code change does not reinstall them (psycopg[binary] brings
# its own libpq: no system packages are needed).
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Hashed, compressed static files for whitenoise, built once into the image. Settings need a
# SECRET_KEY to load; this dummy one exists only during this step and never reaches runtime.
RUN SECRET_KEY=collectstatic-build-only-dummy-key DEBUG=0 python manage.py collectstatic --noinput

# The task files on the local disk (MEDIA_ROOT), owned by the non-root user. docker-compose.yml keeps
# them in a bucket instead (STORAGE_URL): there each container writes only its own upload spools here.
RUN mkdir -p /app/media && chown app:app /app/media

USER app

EXPOSE 8000

# Behind a reverse proxy that sets X-Forwarded-For itself (docs/deploy.md): daphne takes the client's
# address from it, from anyone, so publish this port only to the proxy (-p 127.0.0.1:8000:8000).
CMD ["daphne", "--proxy-headers", "-b", "0.0.0.0", "-p", "8000", "project.asgi:application"]
