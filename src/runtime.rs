//! The account API's own runtime: handlers (JSON, database round trips,
//! token signing, audit writes) run here on a low-priority thread, so the
//! proxy's threads only read the request body and write the answer. A login
//! storm therefore queues behind proxied traffic instead of in front of it.
//! A leaf below the stages: the mail worker and API-key bookkeeping run
//! here too; `api` re-exports it as `api::runtime`.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::GatewayError;

#[derive(Clone)]
pub struct ApiRuntime {
    handle: Handle,
    /// Dropping the last clone ends the runtime's thread.
    _stop: Arc<oneshot::Sender<()>>,
}

impl ApiRuntime {
    pub fn start(workers: usize) -> Result<ApiRuntime, String> {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("portcullis-api".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers.max(1))
                    .thread_name("portcullis-api-worker")
                    .on_thread_start(crate::priority::background)
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = handle_tx.send(Ok(rt.handle().clone()));
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| format!("cannot start the API runtime: {e}"))?;
        let handle = handle_rx
            .recv()
            .map_err(|_| "the API runtime did not start".to_string())??;
        Ok(ApiRuntime {
            handle,
            _stop: Arc::new(stop_tx),
        })
    }

    /// Runs `fut` on the API runtime and waits for it.
    pub async fn run<F>(&self, fut: F) -> Result<F::Output, GatewayError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle
            .spawn(fut)
            .await
            .map_err(|e| GatewayError::Internal(format!("API task: {e}")))
    }

    /// Starts `fut` on the API runtime without waiting (background work
    /// such as mail delivery).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(fut);
    }
}
