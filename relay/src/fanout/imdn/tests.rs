//! Tests of CPIM/IMDN recognition and aggregation.

use proptest::prelude::*;

use super::*;

/// Joins lines with CRLF, as they travel in an MSRP body.
fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out.into_bytes()
}

/// RFC 5438 §7.1.1.3, printed without the blank line between the CPIM
/// and MIME headers (accepted, see the module docs).
fn rfc_7_1_1_3_message() -> Vec<u8> {
    crlf(&[
        "From: Alice <im:alice@example.com>",
        "To: Bob <im:bob@example.com>",
        "NS: imdn <urn:ietf:params:imdn>",
        "imdn.Message-ID: 34jk324j",
        "DateTime: 2006-04-04T12:16:49-05:00",
        "imdn.Disposition-Notification: positive-delivery, negative-delivery",
        "Content-type: text/plain",
        "Content-length: 12",
        "",
        "Hello World",
    ])
}

/// RFC 5438 §7.2.1.1 (`delivery`) and §7.2.1.2 (`display`) IMDN examples.
fn rfc_7_2_1_imdn(imdn_id: &str, notification: &str, status: &str) -> Vec<u8> {
    crlf(&[
        "From: Bob <im:bob@example.com>",
        "To: Alice <im:alice@example.com>",
        "NS: imdn <urn:ietf:params:imdn>",
        &format!("imdn.Message-ID: {imdn_id}"),
        "Content-type: message/imdn+xml",
        "Content-Disposition: notification",
        "Content-length: ...",
        "",
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<imdn xmlns="urn:ietf:params:xml:ns:imdn">"#,
        "      <message-id>34jk324j</message-id>",
        "      <datetime>2008-04-04T12:16:49-05:00</datetime>",
        "     <recipient-uri>im:bob@example.com</recipient-uri>",
        "      <original-recipient-uri",
        "        >im:bob@example.com</original-recipient-uri>",
        &format!("      <{notification}>"),
        "         <status>",
        &format!("            <{status}/>"),
        "         </status>",
        &format!("      </{notification}>"),
        "    </imdn>",
    ])
}

/// A strict RFC 3862 §2 body (blank line between the two header blocks)
/// carrying an IMDN document for `id` with custom XML inside `<imdn>`.
fn strict_imdn(ns_line: &str, id_header: &str, xml: &str) -> Vec<u8> {
    let mut body = crlf(&[
        "From: <sip:bob@example.com>",
        "To: <sip:alice@example.com>",
        ns_line,
        id_header,
        "DateTime: 2024-01-01T00:00:00Z",
        "",
        "Content-Type: message/imdn+xml; charset=utf-8",
        "Content-Disposition: notification",
        "",
    ]);
    body.extend_from_slice(xml.as_bytes());
    body
}

fn imdn_xml(id: &str, kind: &str, status: &str) -> String {
    format!(
        r#"<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>{id}</message-id><datetime>x</datetime><{kind}><status><{status}/></status></{kind}></imdn>"#
    )
}

fn notification(id: &str, kind: &str, status: &str) -> Notification {
    let body = strict_imdn(
        "NS: imdn <urn:ietf:params:imdn>",
        "imdn.Message-ID: n1",
        &imdn_xml(id, kind, status),
    );
    parse_cpim(&body).unwrap().notification.unwrap()
}

#[test]
fn rfc5438_7_1_1_3_chat_message_yields_id_and_requested_dispositions() {
    let body = rfc_7_1_1_3_message();
    let msg = parse_cpim(&body).unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("34jk324j"));
    assert_eq!(msg.from.as_deref(), Some("Alice <im:alice@example.com>"));
    assert_eq!(msg.to, vec!["Bob <im:bob@example.com>".to_owned()]);
    assert_eq!(msg.datetime.as_deref(), Some("2006-04-04T12:16:49-05:00"));
    let want = DispositionRequest {
        positive_delivery: true,
        negative_delivery: true,
        ..DispositionRequest::default()
    };
    assert_eq!(msg.disposition, want);
    assert_eq!(msg.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&body[msg.content_offset..], b"Hello World\r\n");
    assert!(msg.notification.is_none());
}

#[test]
fn rfc5438_7_2_1_1_delivery_notification_example() {
    let msg = parse_cpim(&rfc_7_2_1_imdn(
        "d834jied93rf",
        "delivery-notification",
        "delivered",
    ))
    .unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("d834jied93rf"));
    let n = msg.notification.unwrap();
    assert_eq!(n.original_message_id, "34jk324j");
    assert_eq!(n.kind, NotificationKind::Delivery);
    assert_eq!(n.status, Status::Delivered);
    assert_eq!(n.datetime.as_deref(), Some("2008-04-04T12:16:49-05:00"));
    assert_eq!(n.recipient_uri.as_deref(), Some("im:bob@example.com"));
}

#[test]
fn rfc5438_7_2_1_2_display_notification_example() {
    let msg = parse_cpim(&rfc_7_2_1_imdn(
        "dfjkleriou432333",
        "display-notification",
        "displayed",
    ))
    .unwrap();
    let n = msg.notification.unwrap();
    assert_eq!(
        (n.kind, n.status),
        (NotificationKind::Display, Status::Displayed)
    );
    assert_eq!(n.original_message_id, "34jk324j");
}

#[test]
fn rfc5438_8_3_aggregated_multipart_is_not_a_single_notification() {
    let mut body = crlf(&[
        "From: Bob <im:bob@example.com>",
        "NS: imdn <urn:ietf:params:imdn>",
        "imdn.Message-ID: d834jied93rf",
        "Content-type: multipart/mixed;",
        "                   boundary=\"imdn-boundary\"",
        "Content-Disposition: notification",
        "",
    ]);
    body.extend_from_slice(
        b"--imdn-boundary\r\nContent-type: message/imdn+xml\r\n\r\n<imdn/>\r\n--imdn-boundary\r\n",
    );
    // Only URI-list servers aggregate (§8.3); such a body is not one IMDN
    // and is handled as ordinary content.
    let msg = parse_cpim(&body).unwrap();
    assert_eq!(msg.content_type.as_deref(), Some("multipart/mixed"));
    assert!(msg.notification.is_none());
}

#[test]
fn all_statuses_of_rfc5438_11_1_7() {
    let ok = [
        (
            "delivery-notification",
            "delivered",
            NotificationKind::Delivery,
            Status::Delivered,
        ),
        (
            "delivery-notification",
            "failed",
            NotificationKind::Delivery,
            Status::Failed,
        ),
        (
            "delivery-notification",
            "forbidden",
            NotificationKind::Delivery,
            Status::Forbidden,
        ),
        (
            "delivery-notification",
            "error",
            NotificationKind::Delivery,
            Status::Error,
        ),
        (
            "display-notification",
            "displayed",
            NotificationKind::Display,
            Status::Displayed,
        ),
        (
            "display-notification",
            "error",
            NotificationKind::Display,
            Status::Error,
        ),
        (
            "processing-notification",
            "processed",
            NotificationKind::Processing,
            Status::Processed,
        ),
        (
            "processing-notification",
            "stored",
            NotificationKind::Processing,
            Status::Stored,
        ),
    ];
    for (kind, status, want_kind, want_status) in ok {
        let n = notification("m1", kind, status);
        assert_eq!(
            (n.kind, n.status),
            (want_kind, want_status),
            "{kind}/{status}"
        );
    }
    let body = strict_imdn(
        "NS: imdn <urn:ietf:params:imdn>",
        "imdn.Message-ID: n",
        &imdn_xml("m", "delivery-notification", "displayed"),
    );
    assert!(matches!(
        parse_cpim(&body),
        Err(ImdnError::InvalidStatus { .. })
    ));
}

#[test]
fn cpim_ns_prefix_is_declared_not_hardwired() {
    let xml = imdn_xml("orig", "delivery-notification", "delivered");
    // Any prefix works (RFC 5438 §6.1, RFC 3862 §3.4).
    let msg = parse_cpim(&strict_imdn(
        "NS: rcs <urn:ietf:params:imdn>",
        "rcs.Message-ID: own1",
        &xml,
    ))
    .unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("own1"));
    // A default namespace declaration applies to unprefixed names.
    let msg = parse_cpim(&strict_imdn(
        "NS: <urn:ietf:params:imdn>",
        "Message-ID: own2",
        &xml,
    ))
    .unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("own2"));
    // `imdn.` bound to another namespace is not IMDN's Message-ID.
    let msg = parse_cpim(&strict_imdn(
        "NS: imdn <urn:example:other>",
        "imdn.Message-ID: own3",
        &xml,
    ))
    .unwrap();
    assert_eq!(msg.message_id, None);
    // An undeclared prefix cannot be resolved.
    let msg = parse_cpim(&strict_imdn(
        "NS: x <urn:ietf:params:imdn>",
        "imdn.Message-ID: own4",
        &xml,
    ))
    .unwrap();
    assert_eq!(msg.message_id, None);
    // The notification itself is recognised by its XML in every case.
    assert_eq!(msg.notification.unwrap().original_message_id, "orig");
}

#[test]
fn disposition_request_inside_an_imdn_is_ignored() {
    let body = strict_imdn(
        "NS: imdn <urn:ietf:params:imdn>",
        "imdn.Disposition-Notification: display",
        &imdn_xml("m", "delivery-notification", "delivered"),
    );
    assert!(parse_cpim(&body).unwrap().disposition.is_empty());
}

#[test]
fn xml_prefixes_entities_and_extensions() {
    let xml = r#"<?xml version="1.0"?><!-- c --><i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn" xmlns:e="urn:example:ext">
        <i:message-id> a&amp;b&#x41;<![CDATA[c]]> </i:message-id><e:extra><i:message-id>no</i:message-id></e:extra>
        <i:display-notification><i:status><e:why/><i:displayed/></i:status></i:display-notification></i:imdn>"#;
    let body = strict_imdn("NS: imdn <urn:ietf:params:imdn>", "imdn.Message-ID: n", xml);
    let n = parse_cpim(&body).unwrap().notification.unwrap();
    assert_eq!(n.original_message_id, "a&bAc");
    assert_eq!(n.status, Status::Displayed);
}

#[test]
fn chat_message_kinds() {
    // A chat message requesting display only, strict layout, LF line ends.
    let body = b"NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: Xyz\nimdn.Disposition-Notification: display;x=1, bogus\n\nContent-Type: text/plain;charset=UTF-8\n\nhi";
    let msg = parse_cpim(body).unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("Xyz"));
    assert!(msg.disposition.display && !msg.disposition.positive_delivery);
    assert_eq!(msg.content_type.as_deref(), Some("text/plain"));
    // `message/imdn+xml` with another disposition is not an IMDN (§9).
    let body =
        b"From: <a:b>\n\nContent-Type: message/imdn+xml\nContent-Disposition: render\n\n<x/>";
    assert!(parse_cpim(body).unwrap().notification.is_none());
    assert!(is_cpim("Message/CPIM ; x=y") && !is_cpim("text/plain"));
}

#[test]
fn malformed_inputs_are_errors_never_panics() {
    let ns = "NS: imdn <urn:ietf:params:imdn>";
    let id = "imdn.Message-ID: n";
    let xml_cases = [
        "",
        "<imdn",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">",
        "<imdn xmlns=\"urn:other\"><message-id>m</message-id></imdn>",
        "<imdn><message-id>m</message-id></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id><delivery-notification><status><delivered/></status></delivery-notification></imdn><imdn/>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><delivery-notification><status><delivered/></status></delivery-notification></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id><delivery-notification><status/></delivery-notification></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id><delivery-notification><status><delivered/><failed/></status></delivery-notification></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id><delivery-notification><status><wat/></status></delivery-notification></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id><delivery-notification><status><delivered/></status></delivery-notification><display-notification><status><displayed/></status></display-notification></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>&bogus;</message-id></imdn>",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id></wrong>",
        "junk<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"/>",
    ];
    for xml in xml_cases {
        let body = strict_imdn(ns, id, xml);
        assert!(parse_cpim(&body).is_err(), "accepted: {xml}");
    }
    let long_id = "x".repeat(MAX_ID_LEN + 1);
    let deep = format!(
        r#"<imdn xmlns="urn:ietf:params:xml:ns:imdn" xmlns:e="urn:e">{}{}</imdn>"#,
        "<e:a>".repeat(100),
        "</e:a>".repeat(100)
    );
    for xml in [
        imdn_xml(&long_id, "delivery-notification", "delivered"),
        deep,
    ] {
        assert!(parse_cpim(&strict_imdn(ns, id, &xml)).is_err());
    }
    let many: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("To: <a:{i}>")).collect();
    let many = format!(
        "{}\r\n\r\nContent-Type: text/plain\r\n\r\n",
        many.join("\r\n")
    );
    let header_cases: Vec<&[u8]> = vec![
        b"",
        b"From: <a:b>",
        b"From: <a:b>\r\n",
        b"no colon here\r\n\r\n",
        b": empty name\r\n\r\n",
        b"NS: imdn urn:ietf:params:imdn\r\n\r\n",
        b"NS: a b <urn:x>\r\n\r\n",
        b"NS: imdn <>\r\n\r\n",
        b"From: \xff\xfe\r\n\r\n",
        b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: a\r\nimdn.Message-ID: b\r\n\r\n\r\n",
        b"From: <a:b>\r\n\r\n continuation first\r\n\r\n",
        b"From: <a:b>\r\n\r\nContent-Type: text/plain\r\n",
        many.as_bytes(),
    ];
    for body in header_cases {
        assert!(
            parse_cpim(body).is_err(),
            "accepted: {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_cpim(&body);
    }

    #[test]
    fn truncated_or_corrupted_vectors_never_panic(cut in 0usize..700, flip in 0usize..700, byte in any::<u8>()) {
        let mut body = rfc_7_2_1_imdn("d", "delivery-notification", "delivered");
        if let Some(b) = body.get_mut(flip) {
            *b = byte;
        }
        body.truncate(cut);
        let _ = parse_cpim(&body);
    }
}

#[test]
fn cpm_mld_024_three_devices_delivered_exactly_one_forwarded() {
    let mut agg = ImdnAggregator::new(128);
    let body = rfc_7_2_1_imdn("d834jied93rf", "delivery-notification", "delivered");
    let verdicts: Vec<Verdict> = (0..3)
        .map(|_device| agg.on_notification(&parse_cpim(&body).unwrap().notification.unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Forward,
            Verdict::Suppress(SuppressReason::Duplicate),
            Verdict::Suppress(SuppressReason::Duplicate)
        ]
    );
}
