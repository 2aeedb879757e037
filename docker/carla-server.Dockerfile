# CARLA 0.9.15 server for Bench2Drive: the official image plus the additional maps (Town12/Town13 etc.), which
# Bench2Drive's routes need (Bench2Drive README, "Download and setup CARLA 0.9.15").
#
#   docker build -f docker/carla-server.Dockerfile -t drive-jepa/carla-server:0.9.15 docker
#
# Run one per GPU (see docker/compose.yaml); the command line is the one the harness uses when it launches
# servers itself: -RenderOffScreen -nosound -carla-rpc-port=P -carla-streaming-port=S -graphicsadapter=G.
FROM carlasim/carla:0.9.15

ARG ADDITIONAL_MAPS_URL=https://carla-releases.s3.us-east-005.backblazeb2.com/Linux/AdditionalMaps_0.9.15.tar.gz

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /home/carla
# ImportAssets.sh unpacks every archive found in Import/ into the CARLA folder.
RUN curl -fsSL --retry 3 -o Import/AdditionalMaps_0.9.15.tar.gz "${ADDITIONAL_MAPS_URL}" \
    && bash ImportAssets.sh \
    && rm -f Import/AdditionalMaps_0.9.15.tar.gz

ENV RPC_PORT=2000 \
    STREAMING_PORT=2001 \
    GPU=0

EXPOSE 2000 2001 2002
# Alive = the RPC port accepts connections (the harness then checks it answers through the CARLA client).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${RPC_PORT}"]

CMD ["bash", "-c", "exec ./CarlaUE4.sh -RenderOffScreen -nosound -carla-rpc-port=${RPC_PORT} -carla-streaming-port=${STREAMING_PORT} -graphicsadapter=${GPU}"]
