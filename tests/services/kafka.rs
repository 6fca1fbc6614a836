//! Kafka against tansu, a Kafka-compatible broker (scripts/setup/kafka.sh
//! builds it once into /opt/envgate-tools/bin): each test starts its own
//! broker with in-memory storage on a free port, makes its topics with
//! `tansu topic create`, and writes what a test needs (records, a group's
//! committed offsets, SCRAM users) through a small Kafka client here, built
//! on the same wire types the probe uses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use envgate::outcome::Status;
use envgate::probes::ProbeDef;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::support::*;
use super::tls::Pki;

const TANSU: &str = "/opt/envgate-tools/bin/tansu";

/// A tansu broker on `port`, advertising `advertised` (its own address
/// unless a test says otherwise), with more arguments.
fn tansu(port: u16, advertised: &str, extra: &[&str]) -> Server {
    tansu_on("memory://tansu/", &[], port, advertised, extra)
}

/// A tansu broker keeping its data in `storage`, with `env` set.
fn tansu_on(storage: &str, env: &[(&str, &str)], port: u16, advertised: &str, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(TANSU);
    cmd.arg("broker")
        .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--advertised-listener-url", advertised])
        .args(["--storage-engine", storage])
        .args(["--cluster-id", "envgate-test"])
        .args(extra)
        .envs(env.iter().copied())
        .current_dir(dir.path());
    Server::spawn(&mut cmd, port, String::new(), dir)
}

fn broker() -> Server {
    let port = free_port();
    tansu(port, &format!("tcp://127.0.0.1:{port}"), &[])
}

fn create_topic(port: u16, name: &str, partitions: u32) {
    run(Command::new(TANSU)
        .args(["topic", "create", name])
        .args(["--partitions", &partitions.to_string()])
        .args(["--broker", &format!("tcp://127.0.0.1:{port}")]));
}

fn topics<'a>(names: &'a [&'a str]) -> impl Fn(&mut ProbeDef) + 'a {
    move |d: &mut ProbeDef| d.set("topics", names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
}

/// A blocking Kafka client for setting up what the probe then reads.
struct Client {
    s: TcpStream,
    id: i32,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, id: 0 }
    }

    fn call<Q, A>(&mut self, key: ApiKey, version: i16, req: &Q) -> A
    where
        Q: Encodable + HeaderVersion,
        A: Decodable + HeaderVersion,
    {
        self.id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.id;
        header.client_id = Some(StrBytes::from_static_str("envgate-test"));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, Q::header_version(version)).unwrap();
        req.encode(&mut buf, version).unwrap();
        self.s.write_all(&(buf.len() as u32).to_be_bytes()).unwrap();
        self.s.write_all(&buf).unwrap();
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        self.s.read_exact(&mut body).unwrap();
        let mut body = Bytes::from(body);
        let h = ResponseHeader::decode(&mut body, A::header_version(version)).unwrap();
        assert_eq!(h.correlation_id, self.id);
        A::decode(&mut body, version).unwrap()
    }

    /// `n` records appended to `topic` partition `partition`.
    fn produce(&mut self, topic: &str, partition: i32, n: usize) {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: 0,
                key: None,
                value: Some(Bytes::from(format!("message {i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut batch = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut batch, &records, &options).unwrap();
        let mut pd = produce_request::PartitionProduceData::default();
        pd.index = partition;
        pd.records = Some(batch.freeze());
        let mut td = produce_request::TopicProduceData::default();
        td.name = TopicName(StrBytes::from_string(topic.to_string()));
        td.partition_data = vec![pd];
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 5_000;
        req.topic_data = vec![td];
        let a: ProduceResponse = self.call(ApiKey::Produce, 3, &req);
        let codes: Vec<i16> = a
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
            .collect();
        assert!(codes.iter().all(|c| *c == 0), "{a:?}");
    }

    /// `group` commits `offset` on `topic` partition `partition`, as a
    /// consumer that manages its own assignment does.
    fn commit(&mut self, group: &str, topic: &str, partition: i32, offset: i64) {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = vec![p];
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        req.generation_id_or_member_epoch = -1;
        req.retention_time_ms = -1;
        req.topics = vec![t];
        let a: OffsetCommitResponse = self.call(ApiKey::OffsetCommit, 2, &req);
        assert!(
            a.topics.iter().all(|t| t.partitions.iter().all(|p| p.error_code == 0)),
            "{a:?}"
        );
    }
}

#[tokio::test]
async fn kafka_topics_that_exist_pass_and_a_missing_one_is_not_found_and_never_created() {
    let b = broker();
    create_topic(b.port, "orders", 3);
    let url = format!("kafka://127.0.0.1:{}", b.port);
    wait_until_passes("kafka", &url).await;
    let f = probe("kafka", &url, |d| {
        topics(&["orders"])(d);
        d.set("min_partitions", 3);
    })
    .await;
    assert_status(&f, Status::Pass, "`orders` (3 partitions), every leader answers");
    assert!(f.message.contains("cluster `envgate-test`"), "{}", f.message);

    let f = probe("kafka", &url, topics(&["orders", "ordrs"])).await;
    assert_status(&f, Status::Fail, "not_found: Kafka");
    assert!(f.message.contains("topic `ordrs` does not exist"), "{}", f.message);
    // Asking again finds it still missing: the metadata request created nothing.
    let f = probe("kafka", &url, topics(&["ordrs"])).await;
    assert_status(&f, Status::Fail, "topic `ordrs` does not exist");
}

#[tokio::test]
async fn kafka_topic_with_too_few_partitions_fails_capacity() {
    let b = broker();
    create_topic(b.port, "payments", 2);
    let url = format!("kafka://127.0.0.1:{}", b.port);
    wait_until_passes("kafka", &url).await;
    let f = probe("kafka", &url, |d| {
        topics(&["payments"])(d);
        d.set("min_partitions", 6);
    })
    .await;
    assert_status(&f, Status::Fail, "capacity: Kafka");
    assert!(
        f.message.contains("`payments` has 2 partition(s), expected at least 6"),
        "{}",
        f.message
    );
    let f = probe("kafka", &url, |d| d.set("min_brokers", 3)).await;
    assert_status(&f, Status::Fail, "reports 1 broker(s), expected at least 3");
}

#[tokio::test]
async fn kafka_leader_advertising_an_address_nobody_answers_fails_naming_it() {
    let port = free_port();
    let nobody = ClosedPort::new();
    let b = tansu(port, &format!("tcp://127.0.0.1:{}", nobody.port), &[]);
    create_topic_via(port, "events");
    let url = format!("kafka://127.0.0.1:{}", b.port);
    wait_until_passes("kafka", &url).await;
    let f = probe("kafka", &url, topics(&["events"])).await;
    assert_status(&f, Status::Fail, "refused: Kafka");
    assert!(
        f.message
            .contains("does not answer at the address it advertises (check its advertised.listeners)"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(&format!("127.0.0.1:{}", nobody.port)),
        "{}",
        f.message
    );
}

/// `tansu topic create` asks the broker's advertised address next; for a
/// broker advertising a dead one, the topic is made by the wire request.
fn create_topic_via(port: u16, name: &str) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5_000;
    let a: CreateTopicsResponse = Client::connect(port).call(ApiKey::CreateTopics, 4, &req);
    assert!(a.topics.iter().all(|t| t.error_code == 0), "{a:?}");
}

#[tokio::test]
async fn kafka_consumer_group_lag_is_measured_and_held_to_max_lag() {
    let b = broker();
    create_topic(b.port, "invoices", 1);
    let mut c = Client::connect(b.port);
    c.produce("invoices", 0, 10);
    c.commit("billing", "invoices", 0, 4);
    let url = format!("kafka://127.0.0.1:{}", b.port);
    wait_until_passes("kafka", &url).await;
    let group = |max: Option<u64>| {
        move |d: &mut ProbeDef| {
            topics(&["invoices"])(d);
            d.set("consumer_group", "billing");
            if let Some(m) = max {
                d.set("max_lag", m as i64);
            }
        }
    };
    let f = probe("kafka", &url, group(Some(10))).await;
    assert_status(&f, Status::Pass, "group `billing` lags 6 message(s)");
    assert!(
        f.metrics.iter().any(|m| m.name == "consumer_lag" && m.value == 6.0),
        "{:?}",
        f.metrics
    );
    let f = probe("kafka", &url, group(Some(5))).await;
    assert_status(&f, Status::Fail, "capacity: Kafka");
    assert!(
        f.message
            .contains("consumer group `billing` lags 6 message(s), expected at most 5: `invoices` partition 0 lags 6"),
        "{}",
        f.message
    );
    let f = probe("kafka", &url, |d| {
        topics(&["invoices"])(d);
        d.set("consumer_group", "nobody-consumes");
    })
    .await;
    assert_status(&f, Status::Fail, "not_found: Kafka");
    assert!(
        f.message.contains("has committed no offset on `invoices`"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn kafka_that_requires_sasl_refuses_an_unknown_user_no_credentials_and_an_unoffered_mechanism() {
    let port = free_port();
    let b = tansu(port, &format!("tcp://127.0.0.1:{port}"), &["--authentication"]);
    let secret = unique("pw");
    let sha256 = |d: &mut ProbeDef| d.set("sasl_mechanism", "SCRAM-SHA-256");
    // The whole SCRAM exchange runs; the broker's final word is its refusal.
    let alice = format!("kafka://alice:{secret}@127.0.0.1:{}", b.port);
    let f = probe("kafka", &alice, sha256).await;
    assert_status(&f, Status::Fail, "auth: Kafka");
    assert!(
        f.message.contains("refused user `alice` (SCRAM: unknown-user)"),
        "{}",
        f.message
    );
    assert!(!f.message.contains(&secret), "{}", f.message);

    // No credentials: the broker hangs up on the metadata request.
    let anonymous = format!("kafka://127.0.0.1:{}", b.port);
    let f = probe("kafka", &anonymous, |_| {}).await;
    assert_status(&f, Status::Fail, "auth: Kafka");
    assert!(f.message.contains("without SASL"), "{}", f.message);

    // A mechanism the broker does not offer (tansu offers SCRAM only).
    let f = probe("kafka", &alice, |_| {}).await;
    assert_status(&f, Status::Fail, "auth: Kafka");
    assert!(f.message.contains("asked for SASL PLAIN"), "{}", f.message);
}

#[tokio::test]
async fn kafka_over_tls_with_a_client_certificate_passes_and_says_so_without_it() {
    let pki = Pki::new();
    let port = free_port();
    // The broker behind a TLS front that requires a client certificate,
    // advertising the front, as a cluster with mTLS listeners does.
    let front = pki.front(port, true).await;
    let b = tansu(port, &format!("tcp://127.0.0.1:{front}"), &[]);
    create_topic_via(b.port, "audit");
    let url = format!("kafka+ssl://127.0.0.1:{front}");
    let identified = |d: &mut ProbeDef| {
        pki.identified()(d);
        topics(&["audit"])(d);
    };
    wait_until_passes_with("kafka", &url, identified).await;
    assert_status(
        &probe("kafka", &url, identified).await,
        Status::Pass,
        "every leader answers",
    );
    let f = probe("kafka", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: Kafka");
    assert!(f.message.contains("requires a client certificate"), "{}", f.message);
    // A plain connection to the TLS port is told to use kafka+ssl://.
    let f = probe("kafka", &format!("kafka://127.0.0.1:{front}"), |_| {}).await;
    assert_status(&f, Status::Fail, "protocol: Kafka");
}

#[tokio::test]
async fn kafka_probe_of_something_that_is_not_kafka_says_what_it_found() {
    // NATS speaks first: its INFO line is no Kafka answer.
    let f = probe("kafka", "kafka://127.0.0.1:4222", |_| {}).await;
    assert_status(&f, Status::Fail, "protocol: Kafka kafka://127.0.0.1:4222");
    assert!(f.message.contains("is this a Kafka port?"), "{}", f.message);
    let closed = ClosedPort::new();
    let f = probe("kafka", &format!("kafka://127.0.0.1:{}", closed.port), |_| {}).await;
    assert_status(&f, Status::Fail, "refused: Kafka");
    let silent = silent_listener().await;
    let f = probe_within(
        "kafka",
        &format!("kafka://{silent}"),
        Duration::from_millis(300),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "timeout: Kafka");
}

#[tokio::test]
async fn kafka_with_several_bootstrap_servers_warns_when_one_is_down() {
    let b = broker();
    let closed = ClosedPort::new();
    let url = format!("kafka://127.0.0.1:{},127.0.0.1:{}", b.port, closed.port);
    wait_until_passes("kafka", &format!("kafka://127.0.0.1:{}", b.port)).await;
    let f = probe("kafka", &url, |_| {}).await;
    assert_eq!(f.status, Status::Warn, "{f:?}");
    assert!(
        f.message.contains(&format!("127.0.0.1:{}", closed.port)),
        "{}",
        f.message
    );
}
