//! kill -9 under write load: a `pronet serve profile` process is killed (SIGKILL, no shutdown)
//! while members create their profiles, restarted on the same data, and every creation it had
//! acknowledged is read back. On the embedded store and, when it is reachable, PostgreSQL.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pronet_common::auth::{with_token, AuthConfig};
use pronet_proto::profile::v1 as pb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

const SECRET: &str = "crash-test-secret-of-at-least-32-bytes!";

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], pronet_common::testing::unused_port()))
}

fn start(addr: SocketAddr, data_dir: &std::path::Path, database_url: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pronet"));
    cmd.args(["serve", "profile", "--listen", &addr.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--metrics-listen", &free_port().to_string()])
        .env("PRONET_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.spawn().expect("starts pronet serve")
}

/// A client of the profile server at `addr` once its health says SERVING (its store answers),
/// as a readiness probe would wait: a listening port alone is not a ready server.
async fn connect(addr: SocketAddr) -> ProfileServiceClient<Channel> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    for _ in 0..1500 {
        if let Ok(c) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            let serving = HealthClient::new(c.clone())
                .check(HealthCheckRequest {
                    service: "pronet.profile.v1.ProfileService".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
            if serving {
                return ProfileServiceClient::new(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pronet serve profile did not become ready on {addr}");
}

async fn acknowledged_writes_survive_kill_9(database_url: Option<&str>) {
    let auth = Arc::new(AuthConfig::hs256(SECRET.as_bytes(), "pronet").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut child = start(addr, dir.path(), database_url);
    let client = connect(addr).await;

    // 16 writers create profiles until the process dies under them.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut writers = Vec::new();
    for w in 0..16 {
        let (client, auth, acked) = (client.clone(), auth.clone(), acked_tx.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let member = format!("crash{w}x{i}");
                let token = auth
                    .member_token(&member, Duration::from_secs(600))
                    .unwrap();
                let request = with_token(
                    pb::CreateProfileRequest {
                        profile: Some(pb::Profile {
                            handle: member.clone(),
                            display_name: format!("Crash {w} {i}"),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    &token,
                );
                match client.clone().create_profile(request).await {
                    Ok(_) => {
                        let _ = acked.send(member);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    drop(acked_tx);
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let mut acked = Vec::new();
    while let Ok(m) = acked_rx.try_recv() {
        acked.push(m);
    }
    assert!(
        acked.len() > 50,
        "only {} writes before the kill",
        acked.len()
    );

    // Restarted on the same data: every acknowledged profile is there.
    let mut child = start(addr, dir.path(), database_url);
    let mut client = connect(addr).await;
    let reader = auth
        .member_token("auditor", Duration::from_secs(600))
        .unwrap();
    let mut lost = Vec::new();
    for member in &acked {
        let got = client
            .get_profile(with_token(
                pb::GetProfileRequest {
                    lookup: Some(pb::get_profile_request::Lookup::MemberId(member.clone())),
                },
                &reader,
            ))
            .await;
        if got.is_err() {
            lost.push(member.clone());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_on_the_embedded_store() {
    acknowledged_writes_survive_kill_9(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_on_postgres() {
    let Some(db) = pronet_common::testing::postgres_database("crash").await else {
        return;
    };
    acknowledged_writes_survive_kill_9(Some(&db.url)).await;
}
