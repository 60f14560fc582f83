//! A blocking CRI client: gRPC (tonic, prost) over containerd's unix socket, each call
//! bounded by a deadline, for the tests that play the kubelet.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use hyper_util::rt::TokioIo;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

use super::proto::*;

/// How long one call may take unless the caller says otherwise: a stop or remove that hangs
/// (the failure this client exists to catch) must fail the test, not stall it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct CriClient {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

impl CriClient {
    /// Connects to the CRI socket (containerd's gRPC address).
    pub fn connect(socket: &Path) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the client's tokio runtime")?;
        let path: PathBuf = socket.to_path_buf();
        // The URI is never dialled: the connector opens the unix socket instead.
        let endpoint = Endpoint::from_static("http://cri.invalid").connect_timeout(CALL_TIMEOUT);
        let channel = rt
            .block_on(async {
                tokio::time::timeout(
                    CALL_TIMEOUT,
                    endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    })),
                )
                .await
            })
            .map_err(|_| anyhow!("connecting to {} timed out", socket.display()))?
            .with_context(|| format!("connecting to {}", socket.display()))?;
        Ok(Self { rt, channel })
    }

    /// One unary call of `/runtime.v1.<service>/<method>`.
    pub fn call<Req, Resp>(&self, service: &str, method: &str, req: Req) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.call_within(service, method, req, CALL_TIMEOUT)
    }

    pub fn call_within<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path = PathAndQuery::try_from(format!("/runtime.v1.{service}/{method}"))?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let what = format!("{service}/{method}");
        let resp = self.rt.block_on(async move {
            tokio::time::timeout(timeout, async move {
                grpc.ready()
                    .await
                    .map_err(|e| anyhow!("channel not ready: {e}"))?;
                grpc.unary(
                    tonic::Request::new(req),
                    path,
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .map_err(|s| anyhow!("{:?}: {}", s.code(), s.message()))
            })
            .await
        });
        match resp {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(e)) => Err(e.context(what)),
            Err(_) => Err(anyhow!("{what} did not answer within {timeout:?}")),
        }
    }

    pub fn version(&self) -> Result<VersionResponse> {
        self.call(
            "RuntimeService",
            "Version",
            VersionRequest {
                version: "v1".into(),
            },
        )
    }

    pub fn pull_image(&self, image: &str) -> Result<String> {
        let r: PullImageResponse = self.call(
            "ImageService",
            "PullImage",
            PullImageRequest {
                image: Some(ImageSpec {
                    image: image.into(),
                }),
            },
        )?;
        Ok(r.image_ref)
    }

    pub fn run_pod_sandbox(&self, config: &PodSandboxConfig, handler: &str) -> Result<String> {
        let r: RunPodSandboxResponse = self.call(
            "RuntimeService",
            "RunPodSandbox",
            RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            },
        )?;
        Ok(r.pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let r: PodSandboxStatusResponse =
            self.call("RuntimeService", "PodSandboxStatus", sandbox_id(id))?;
        r.status.context("PodSandboxStatus without a status")
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.call::<_, Empty>("RuntimeService", "StopPodSandbox", sandbox_id(id))
            .map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.call::<_, Empty>("RuntimeService", "RemovePodSandbox", sandbox_id(id))
            .map(drop)
    }

    pub fn list_pod_sandboxes(&self) -> Result<Vec<PodSandbox>> {
        let r: ListPodSandboxResponse =
            self.call("RuntimeService", "ListPodSandbox", ListRequest {})?;
        Ok(r.items)
    }

    pub fn create_container(
        &self,
        pod: &str,
        config: ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> Result<String> {
        let r: CreateContainerResponse = self.call(
            "RuntimeService",
            "CreateContainer",
            CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(sandbox.clone()),
            },
        )?;
        Ok(r.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<()> {
        self.call::<_, Empty>("RuntimeService", "StartContainer", container_id(id))
            .map(drop)
    }

    pub fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let r: ContainerStatusResponse =
            self.call("RuntimeService", "ContainerStatus", container_id(id))?;
        r.status.context("ContainerStatus without a status")
    }

    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> Result<ExecSyncResponse> {
        self.call_within(
            "RuntimeService",
            "ExecSync",
            ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: timeout_s,
            },
            CALL_TIMEOUT + Duration::from_secs(timeout_s.max(0) as u64),
        )
    }

    pub fn stop_container(&self, id: &str, timeout_s: i64) -> Result<()> {
        self.call_within::<_, Empty>(
            "RuntimeService",
            "StopContainer",
            StopContainerRequest {
                container_id: id.into(),
                timeout: timeout_s,
            },
            CALL_TIMEOUT + Duration::from_secs(timeout_s.max(0) as u64),
        )
        .map(drop)
    }

    pub fn update_container_resources(
        &self,
        id: &str,
        linux: LinuxContainerResources,
    ) -> Result<()> {
        self.call::<_, Empty>(
            "RuntimeService",
            "UpdateContainerResources",
            UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(linux),
            },
        )
        .map(drop)
    }

    pub fn remove_container(&self, id: &str) -> Result<()> {
        self.call::<_, Empty>("RuntimeService", "RemoveContainer", container_id(id))
            .map(drop)
    }

    pub fn list_containers(&self) -> Result<Vec<Container>> {
        let r: ListContainersResponse =
            self.call("RuntimeService", "ListContainers", ListRequest {})?;
        Ok(r.containers)
    }
}

fn sandbox_id(id: &str) -> PodSandboxIdRequest {
    PodSandboxIdRequest {
        pod_sandbox_id: id.into(),
    }
}

fn container_id(id: &str) -> ContainerIdRequest {
    ContainerIdRequest {
        container_id: id.into(),
    }
}
