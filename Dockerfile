# hotpixels on Dask: one image for the scheduler, the workers and the scan job.
#
#   docker build -t hotpixels .
#   docker run --rm -v "$PWD/data:/data" hotpixels hotpixels scan /data/photos --out /data/out
#
# docker-compose.yml builds this image and runs a whole cluster from it; see the comments there.
# The image has `hotpixels` and `dask` (dask scheduler / dask worker) on PATH, runs as the
# non-root user `hotpixels` (uid 1000), and expects images and results under /data.
FROM python:3.11-slim

# NUMBA_CACHE_DIR: numba caches its compiled kernels (cache=True); site-packages is read-only
# for the non-root user, and $HOME may not exist for a uid given with `--user`.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NUMBA_CACHE_DIR=/tmp/numba-cache

WORKDIR /opt/hotpixels

# 1. Dependencies only, from pyproject.toml, with a placeholder package: this layer is reused
#    until pyproject.toml changes, so editing the code does not download numpy, dask, numba... again.
#    (Every dependency ships manylinux wheels, rawpy's LibRaw included: no compiler, no apt-get.)
#    With the synth extra (pidng), so that `hotpixels synth --format dng` works, and the s3 extra
#    (s3fs), so that inputs and --out on S3 work on every worker; not the test extra.
COPY pyproject.toml README.md ./
RUN mkdir pipeline && touch pipeline/__init__.py \
 && pip install '.[synth,s3]' \
 && pip uninstall -y hotpixels \
 && rm -rf pipeline build ./*.egg-info

# 2. The package itself (its dependencies and the synth extra come from 1.), and the example
#    configs under /opt/hotpixels/configs. The checks: the commands are on PATH, and DNG works.
COPY pipeline/ pipeline/
COPY configs/ configs/
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info \
 && hotpixels --help > /dev/null \
 && hotpixels synth /tmp/dng-check --frames 1 --size 96x64 --format dng > /dev/null \
 && rm -rf /tmp/dng-check \
 && dask scheduler --help > /dev/null \
 && dask worker --help > /dev/null

# 3. A non-root user, hotpixels (uid 1000; numeric below so that Kubernetes runAsNonRoot can
#    check it); /data is the shared folder (a bind mount or a named volume in compose).
RUN useradd --create-home --uid 1000 --user-group hotpixels \
 && mkdir -p /data \
 && chown hotpixels:hotpixels /data
USER 1000:1000
WORKDIR /data

# 8786: scheduler (dask protocol), 8787: dashboard.
EXPOSE 8786 8787
CMD ["hotpixels", "--help"]
