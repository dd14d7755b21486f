//! Photo objects through `object_store`: a local folder (the embedded default) or S3 / MinIO
//! (`OBJECT_STORE_URL=s3://bucket` with `AWS_*`). Keys carry no personal data:
//! `photos/<photo id>/<content hash>-<variant>.webp` (random ids, content-addressed, never
//! rewritten — which is why they can be served as immutable).
use std::sync::Arc;

use bytes::Bytes;
use object_store::{
    aws::AmazonS3Builder, local::LocalFileSystem, path::Path, ObjectStore, ObjectStoreExt,
    PutPayload,
};
use secrecy::ExposeSecret;

use crate::config::Settings;

#[derive(Clone)]
pub struct PhotoStore {
    store: Arc<dyn ObjectStore>,
    /// For logs and `/readyz`: `local:<dir>` or `s3://bucket`.
    pub describe: String,
}

/// The key of one variant.
pub fn object_key(storage_key: &str, variant: &str) -> String {
    format!("{storage_key}-{variant}.webp")
}

impl PhotoStore {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(s3) = &settings.s3 {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                builder = builder
                    .with_access_key_id(id.expose_secret())
                    .with_secret_access_key(secret.expose_secret());
            }
            let store = builder
                .build()
                .map_err(|e| anyhow::anyhow!("OBJECT_STORE_URL: {e}"))?;
            return Ok(Self {
                store: Arc::new(store),
                describe: format!("s3://{}", s3.bucket),
            });
        }
        let dir = &settings.object_store_url;
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("OBJECT_STORE_URL: cannot create `{dir}`: {e}"))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| anyhow::anyhow!("OBJECT_STORE_URL: `{dir}`: {e}"))?;
        Ok(Self {
            store: Arc::new(store),
            describe: format!("local:{dir}"),
        })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&Path::from(key)).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
