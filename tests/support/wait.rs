//! Waiting on what a user would watch for: watch events, bounded by a deadline.

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// Waits until the object `name` satisfies `cond`, and returns it. On timeout, panics with
/// what was being waited for and the object's last state.
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, what: &str, timeout: Duration, cond: F) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(&K) -> bool,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut last: Option<K> = None;
    let stream = watcher(api.clone(), config).applied_objects();
    futures::pin_mut!(stream);
    let found = tokio::time::timeout(timeout, async {
        while let Some(event) = stream.next().await {
            if let Ok(obj) = event {
                if cond(&obj) {
                    return Some(obj);
                }
                last = Some(obj);
            }
        }
        None
    })
    .await;
    // Managed fields would bury the status a reader of a failed run looks for.
    if let Some(obj) = last.as_mut() {
        obj.meta_mut().managed_fields = None;
    }
    match found {
        Ok(Some(obj)) => obj,
        _ => panic!("timed out after {timeout:?} waiting for {name}: {what}; last seen: {last:#?}"),
    }
}

/// Waits until the objects matching `labels` satisfy `cond` as a set, and returns them.
pub async fn wait_for_list<K, F>(
    api: &Api<K>,
    labels: &str,
    what: &str,
    timeout: Duration,
    cond: F,
) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(&[K]) -> bool,
{
    let config = watcher::Config::default().labels(labels);
    let store = kube::runtime::reflector::store::Writer::<K>::default();
    let reader = store.as_reader();
    let stream = kube::runtime::reflector(store, watcher(api.clone(), config));
    futures::pin_mut!(stream);
    let mut last = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        // The store is empty until the first list is in: "no pods left" must not pass then.
        let mut listed = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => listed = true,
                Ok(_) => {}
                Err(_) => continue,
            }
            if !listed {
                continue;
            }
            let items: Vec<K> = reader.state().iter().map(|o| (**o).clone()).collect();
            if cond(&items) {
                return Some(items);
            }
            last = items;
        }
        None
    })
    .await;
    for obj in &mut last {
        obj.meta_mut().managed_fields = None;
    }
    match found {
        Ok(Some(items)) => items,
        _ => {
            panic!("timed out after {timeout:?} waiting for {labels}: {what}; last seen: {last:#?}")
        }
    }
}
