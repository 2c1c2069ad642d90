//! Tests of the test support itself: the fake GitHub behaves as GitHub does (compare-and-swap
//! on contents, pagination, read-only tokens, refs, commits), and the OpenAPI checker catches
//! what it should.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::github::{wrapped_base64, FakeGitHub, DEFAULT_IDENTITY};
use crate::support::openapi::OpenApi;
use crate::support::{git_blob_sha, sha1_hex};

const STATE: &str = "flagramp-state";

/// A bare HTTP client that talks to the fake as a GitHub client would.
struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    user_agent: bool,
}

struct Answer {
    status: u16,
    body: Value,
    link: Option<String>,
}

impl Client {
    fn new(gh: &FakeGitHub) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client {
            http: reqwest::Client::new(),
            base: gh.uri(),
            token: Some("ghs_selftest".to_string()),
            user_agent: true,
        }
    }

    /// Sends `method` to `path_and_query` (relative to the fake, or an absolute URL).
    async fn send(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Answer {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.base)
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if self.user_agent {
            request = request.header("User-Agent", "flagramp-selftest");
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body, link }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None).await
    }

    async fn put_file(&self, path: &str, content: &[u8], sha: Option<&str>, branch: Option<&str>) -> Answer {
        let mut body = json!({ "message": format!("update {path}"), "content": STANDARD.encode(content) });
        if let Some(sha) = sha {
            body["sha"] = json!(sha);
        }
        if let Some(branch) = branch {
            body["branch"] = json!(branch);
        }
        self.send("PUT", &format!("/repos/octo-org/octo-repo/contents/{path}"), Some(body))
            .await
    }
}

async fn fake() -> FakeGitHub {
    FakeGitHub::start("octo-org", "octo-repo", "main").await
}

#[test]
fn sha1_and_git_blob_ids_match_known_values() {
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(sha1_hex(&[b'a'; 1000]), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    // `git hash-object` of an empty file and of "hello world\n".
    assert_eq!(git_blob_sha(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    assert_eq!(
        git_blob_sha(b"hello world\n"),
        "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
    );
}

#[test]
fn contents_base64_is_wrapped_at_60_characters_like_github() {
    let bytes = vec![7u8; 100];
    let wrapped = wrapped_base64(&bytes);
    let lines: Vec<&str> = wrapped.split_terminator('\n').collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[..2].iter().all(|l| l.len() == 60));
    assert!(wrapped.ends_with('\n'));
    assert_eq!(STANDARD.decode(wrapped.replace('\n', "")).unwrap(), bytes);
    assert_eq!(wrapped_base64(b""), "");
}

#[test]
fn validator_agrees_with_the_fixture_readme_about_upstream_examples() {
    let api = OpenApi::github();
    let errors = |schema: &str, example: &str| api.validate_component(schema, &api.example(example).unwrap());
    // Known upstream inconsistencies (fixtures README, "Upstream inconsistencies").
    let prs = api.validate(
        &json!({ "type": "array", "items": { "$ref": "#/components/schemas/pull-request-simple" } }),
        &api.example("pull-request-simple-items").unwrap(),
    );
    assert!(
        prs.iter()
            .any(|e| e.starts_with("/0/requested_teams/0: required property `type`")),
        "{prs:?}"
    );
    let repo = errors("full-repository", "full-repository-default-response");
    assert_eq!(
        repo,
        [
            "(root): required property `language` is missing",
            "/source: required property `language` is missing"
        ]
    );
    // `nullable` admits null whatever the enum says.
    assert_eq!(
        errors("check-run", "check-run-example-of-in-progress-conclusion"),
        Vec::<String>::new()
    );
    // Everything else the fake builds on validates.
    for (schema, example) in [
        ("issue-comment", "issue-comment"),
        ("content-file", "content-file-response-if-content-is-a-file"),
        ("file-commit", "file-commit-example-for-creating-a-file"),
        ("file-commit", "file-commit-example-for-updating-a-file"),
        ("git-ref", "git-ref"),
    ] {
        assert_eq!(errors(schema, example), Vec::<String>::new(), "{example}");
    }
    for (schema, example) in [("commit", "commit-items"), ("diff-entry", "diff-entry-items")] {
        let list = json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } });
        assert_eq!(
            api.validate(&list, &api.example(example).unwrap()),
            Vec::<String>::new(),
            "{example}"
        );
    }
}

#[test]
fn validator_reports_json_pointers_types_enums_and_additional_properties() {
    let api = OpenApi::github();
    let schema = json!({
        "type": "object",
        "required": ["a"],
        "additionalProperties": false,
        "properties": {
            "a": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 3 } },
            "b": { "type": "string", "enum": ["x", "y"], "nullable": true },
            "c/d": { "oneOf": [{ "type": "string" }, { "type": "boolean" }] },
            "e": { "allOf": [{ "type": "string", "maxLength": 2 }] }
        }
    });
    assert_eq!(
        api.validate(&schema, &json!({ "a": [1, 3], "b": null, "c/d": true })),
        Vec::<String>::new()
    );
    let errors = api.validate(
        &schema,
        &json!({ "a": [0, "2", 4], "b": "z", "c/d": 5, "e": "long", "f": 1 }),
    );
    let expected = [
        "/a/0: 0 is below the minimum 1",
        "/a/1: expected integer, got string \"2\"",
        "/a/2: 4 is above the maximum 3",
        "/b: string \"z\" is not one of [\"x\", \"y\"]",
        "/c~1d: matches none of the oneOf alternatives",
        "/e: length 4 is more than maxLength 2",
        "(root): property `f` is not allowed",
    ];
    for e in expected {
        assert!(
            errors.iter().any(|got| got.starts_with(e)),
            "missing {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    assert!(api
        .validate(&schema, &json!({}))
        .contains(&"(root): required property `a` is missing".to_string()));
}

#[test]
fn checker_matches_multi_segment_paths_and_rejects_unknown_ones() {
    let api = OpenApi::github();
    let q = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        api.check_request(
            "GET",
            "/repos/o/r/contents/.github/rollouts/a.yml",
            &q(&[("ref", "flagramp/state")]),
            None
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        api.operation_template("GET", "/repos/o/r/git/ref/heads/flagramp/state")
            .as_deref(),
        Some("/repos/{owner}/{repo}/git/ref/{ref}")
    );
    assert_eq!(
        api.operation_template("GET", "/repos/o/r/commits/abc/pulls").as_deref(),
        Some("/repos/{owner}/{repo}/commits/{commit_sha}/pulls")
    );
    assert_eq!(
        api.operation_template("GET", "/repos/o/r/commits").as_deref(),
        Some("/repos/{owner}/{repo}/commits")
    );
    let unknown = api.check_request("GET", "/repos/o/r/branches", &[], None);
    assert!(unknown[0].contains("no operation"), "{unknown:?}");
    let wrong_method = api.check_request("DELETE", "/repos/o/r/contents/a.yml", &[], None);
    assert!(wrong_method[0].contains("no DELETE operation"), "{wrong_method:?}");
    let bad_number = api.check_request("GET", "/repos/o/r/issues/abc/comments", &[], None);
    assert!(
        bad_number[0].contains("path parameter `issue_number`"),
        "{bad_number:?}"
    );
    let bad_page = api.check_request("GET", "/repos/o/r/issues/1/comments", &q(&[("per_page", "many")]), None);
    assert!(bad_page[0].contains("query parameter `per_page`"), "{bad_page:?}");
    let no_body = api.check_request("POST", "/repos/o/r/issues/1/comments", &[], None);
    assert!(no_body[0].contains("request body is required"), "{no_body:?}");
    let thin = api.check_response(
        "GET",
        "/repos/o/r/contents/a.yml",
        200,
        Some(&json!({ "type": "file" })),
    );
    assert!(thin[0].contains("matches none of the oneOf alternatives"), "{thin:?}");
    assert!(thin[0].contains("content-file: (root): required property"), "{thin:?}");
    let undocumented = api.check_response("PUT", "/repos/o/r/contents/a.yml", 500, None);
    assert!(
        undocumented[0].contains("status 500 is not documented"),
        "{undocumented:?}"
    );
}

#[tokio::test]
async fn contents_compare_and_swap_works_as_on_github() {
    let gh = fake().await;
    let api = Client::new(&gh);
    let path = "state/new-checkout.json";

    let missing = api.get(&format!("/repos/octo-org/octo-repo/contents/{path}")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "Not Found");

    // New file without sha: created.
    let created = api.put_file(path, b"{\"v\":1}", None, None).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sha1 = created.body["content"]["sha"].as_str().unwrap().to_string();
    assert_eq!(sha1, git_blob_sha(b"{\"v\":1}"));
    assert_eq!(gh.file("main", path).unwrap(), b"{\"v\":1}");

    // Read it back: base64 with newlines, same sha.
    let read = api
        .get(&format!("/repos/octo-org/octo-repo/contents/{path}?ref=main"))
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["sha"], sha1.as_str());
    assert_eq!(read.body["encoding"], "base64");
    let content = read.body["content"].as_str().unwrap();
    assert!(content.ends_with('\n'));
    assert_eq!(STANDARD.decode(content.replace('\n', "")).unwrap(), b"{\"v\":1}");

    // Update with the current sha: 200 and a new sha.
    let updated = api.put_file(path, b"{\"v\":2}", Some(&sha1), None).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let sha2 = updated.body["content"]["sha"].as_str().unwrap().to_string();
    assert_eq!(sha2, git_blob_sha(b"{\"v\":2}"));
    assert_eq!(updated.body["commit"]["message"], format!("update {path}"));

    // Stale sha: 409, and nothing changes.
    let stale = api.put_file(path, b"{\"v\":3}", Some(&sha1), None).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body["message"], format!("{path} does not match {sha1}"));
    assert_eq!(stale.body["status"], "409");
    assert_eq!(
        stale.body["documentation_url"],
        "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"
    );

    // Existing file without sha: 422.
    let no_sha = api.put_file(path, b"{\"v\":3}", None, None).await;
    assert_eq!(no_sha.status, 422);
    assert_eq!(no_sha.body["message"], "Invalid request.\n\n\"sha\" wasn't supplied.");

    // Missing branch: 404.
    let no_branch = api.put_file(path, b"{}", None, Some("nope")).await;
    assert_eq!(no_branch.status, 404);
    assert_eq!(no_branch.body["message"], "Branch nope not found");

    assert_eq!(gh.file("main", path).unwrap(), b"{\"v\":2}");
    assert_eq!(
        gh.file_history("main", path),
        vec![b"{\"v\":1}".to_vec(), b"{\"v\":2}".to_vec()]
    );
    assert_eq!(gh.writes(), 5);
    assert_eq!(gh.applied_writes(), 2);
    gh.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_updates_from_one_sha_give_one_winner() {
    let gh = fake().await;
    gh.put_file(STATE, "rollouts/a.json", b"{\"stage\":0}");
    let base = gh.file_sha(STATE, "rollouts/a.json").unwrap();
    let api = std::sync::Arc::new(Client::new(&gh));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let api = api.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let content = format!("{{\"stage\":1,\"writer\":{i}}}");
            api.put_file("rollouts/a.json", content.as_bytes(), Some(&base), Some(STATE))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(gh.file_history(STATE, "rollouts/a.json").len(), 2);
    gh.assert_conformant();
}

#[tokio::test]
async fn comments_paginate_with_link_headers() {
    let gh = fake().await;
    for i in 0..150 {
        gh.add_comment(7, "someone", &format!("comment {i}"));
    }
    let api = Client::new(&gh);
    let first = api
        .get("/repos/octo-org/octo-repo/issues/7/comments?per_page=100")
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    let link = first.link.expect("a Link header on a first of two pages");
    let uri = gh.uri();
    assert_eq!(
        link,
        format!(
            "<{uri}/repos/octo-org/octo-repo/issues/7/comments?per_page=100&page=2>; rel=\"next\", \
             <{uri}/repos/octo-org/octo-repo/issues/7/comments?per_page=100&page=2>; rel=\"last\""
        )
    );
    let next = link.split(';').next().unwrap().trim_matches(['<', '>']).to_string();
    let second = api.get(&next).await;
    let items = second.body.as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[49]["body"], "comment 149");
    let link = second.link.unwrap();
    assert!(link.contains("rel=\"prev\"") && link.contains("rel=\"first\"") && !link.contains("rel=\"next\""));

    // Default page size is 30; an empty issue has no Link.
    let default = api.get("/repos/octo-org/octo-repo/issues/7/comments").await;
    assert_eq!(default.body.as_array().unwrap().len(), 30);
    let empty = api.get("/repos/octo-org/octo-repo/issues/8/comments").await;
    assert_eq!(empty.body, json!([]));
    assert!(empty.link.is_none());

    // Create and edit: the token's identity is the author.
    let created = api
        .send(
            "POST",
            "/repos/octo-org/octo-repo/issues/8/comments",
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["user"]["login"], DEFAULT_IDENTITY);
    assert_eq!(created.body["user"]["type"], "Bot");
    let id = created.body["id"].as_u64().unwrap();
    assert!(id > u64::from(u32::MAX) / 2 && id > i32::MAX as u64);
    let edited = api
        .send(
            "PATCH",
            &format!("/repos/octo-org/octo-repo/issues/comments/{id}"),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["body"], "edited");
    let missing = api
        .send(
            "PATCH",
            "/repos/octo-org/octo-repo/issues/comments/1",
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(missing.status, 404);
    gh.set_identity("flagramp-app[bot]");
    api.send(
        "POST",
        "/repos/octo-org/octo-repo/issues/8/comments",
        Some(json!({"body": "again"})),
    )
    .await;
    let comments = gh.comments(8);
    assert_eq!(comments.len(), 2);
    assert_eq!(
        (comments[0].author.as_str(), comments[0].body.as_str()),
        (DEFAULT_IDENTITY, "edited")
    );
    assert_eq!(comments[1].author, "flagramp-app[bot]");
    gh.assert_conformant();
}

#[tokio::test]
async fn read_only_tokens_and_missing_tokens_are_refused() {
    let gh = fake().await;
    gh.set_read_only(true);
    let api = Client::new(&gh);
    let refused = api
        .send(
            "POST",
            "/repos/octo-org/octo-repo/issues/1/comments",
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["message"], "Resource not accessible by integration");
    assert_eq!(refused.body["status"], "403");
    let put = api.put_file("a.txt", b"a", None, None).await;
    assert_eq!(put.status, 403);
    assert_eq!(api.get("/repos/octo-org/octo-repo").await.status, 200);
    assert!(gh.comments(1).is_empty());
    assert_eq!((gh.writes(), gh.applied_writes()), (2, 0));

    let anonymous = Client {
        token: None,
        ..Client::new(&gh)
    };
    let refused = anonymous.get("/repos/octo-org/octo-repo/contents/a.txt").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["message"], "Requires authentication");
    gh.assert_conformant();
}

#[tokio::test]
async fn branches_are_read_and_created_through_git_refs() {
    let gh = fake().await;
    let api = Client::new(&gh);
    let repo = api.get("/repos/octo-org/octo-repo").await;
    assert_eq!(repo.status, 200);
    assert_eq!(repo.body["default_branch"], "main");
    assert_eq!(repo.body["full_name"], "octo-org/octo-repo");

    let missing = api.get("/repos/octo-org/octo-repo/git/ref/heads/flagramp-state").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "Not Found");

    let main = api.get("/repos/octo-org/octo-repo/git/ref/heads/main").await;
    assert_eq!(main.status, 200);
    let sha = main.body["object"]["sha"].as_str().unwrap().to_string();
    let create = json!({ "ref": "refs/heads/flagramp-state", "sha": sha });
    let created = api
        .send("POST", "/repos/octo-org/octo-repo/git/refs", Some(create.clone()))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["ref"], "refs/heads/flagramp-state");
    assert!(gh.branch_exists("flagramp-state"));
    let again = api
        .send("POST", "/repos/octo-org/octo-repo/git/refs", Some(create))
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(again.body["message"], "Reference already exists");

    // A branch with a slash in its name, seeded by the test.
    gh.put_file("flagramp/state", "x.json", b"{}");
    let slashed = api.get("/repos/octo-org/octo-repo/git/ref/heads/flagramp/state").await;
    assert_eq!(slashed.status, 200);
    assert_eq!(slashed.body["ref"], "refs/heads/flagramp/state");
    let file = api
        .get("/repos/octo-org/octo-repo/contents/x.json?ref=flagramp/state")
        .await;
    assert_eq!(file.status, 200);
    let no_ref = api.get("/repos/octo-org/octo-repo/contents/x.json?ref=nope").await;
    assert_eq!(no_ref.status, 404);

    // A protected branch refuses contents writes with a rule violation.
    gh.protect_branch("main");
    let refused = api.put_file("flags.json", b"{}", None, Some("main")).await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.body["message"],
        "Repository rule violations found\n\nChanges must be made through a pull request.\n\n"
    );
    gh.assert_conformant();
}

#[tokio::test]
async fn commits_and_their_pull_requests_are_found_by_path() {
    let gh = fake().await;
    let spec = ".github/rollouts/new-checkout.yml";
    gh.put_file("main", spec, b"version: 1\n");
    gh.add_commit(spec, "1111111111111111111111111111111111111111", Some(41));
    gh.put_file("main", "README.md", b"hello\n");
    gh.add_commit(spec, "2222222222222222222222222222222222222222", Some(42));
    gh.set_pr_files(42, &[(spec, "modified"), ("README.md", "added")]);
    let api = Client::new(&gh);

    let latest = api
        .get(&format!(
            "/repos/octo-org/octo-repo/commits?path={spec}&sha=main&per_page=1"
        ))
        .await;
    assert_eq!(latest.status, 200);
    let list = latest.body.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["sha"], "2222222222222222222222222222222222222222");
    assert!(latest.link.unwrap().contains("path=.github/rollouts/new-checkout.yml"));
    let all = api.get(&format!("/repos/octo-org/octo-repo/commits?path={spec}")).await;
    let shas: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(shas.len(), 3);
    assert_eq!(
        shas[..2],
        [
            "2222222222222222222222222222222222222222",
            "1111111111111111111111111111111111111111"
        ]
    );

    let pulls = api
        .get("/repos/octo-org/octo-repo/commits/2222222222222222222222222222222222222222/pulls")
        .await;
    assert_eq!(pulls.status, 200);
    assert_eq!(pulls.body[0]["number"], 42);
    assert_eq!(pulls.body.as_array().unwrap().len(), 1);
    let none = api
        .get(&format!("/repos/octo-org/octo-repo/commits/{}/pulls", shas[2]))
        .await;
    assert_eq!(none.body, json!([]));
    let unknown = api
        .get("/repos/octo-org/octo-repo/commits/ffffffffffffffffffffffffffffffffffffffff/pulls")
        .await;
    assert_eq!(unknown.status, 422);

    let files = api.get("/repos/octo-org/octo-repo/pulls/42/files?per_page=100").await;
    assert_eq!(files.status, 200);
    let files = files.body.as_array().unwrap();
    assert_eq!(
        (files[0]["filename"].as_str(), files[0]["status"].as_str()),
        (Some(spec), Some("modified"))
    );
    assert_eq!(files[1]["filename"], "README.md");
    gh.assert_conformant();
}

#[tokio::test]
async fn injected_failures_are_applied_or_not_as_asked() {
    let gh = fake().await;
    let api = Client::new(&gh);
    gh.fail_once_after_applying("POST", "/issues/3/comments", 502);
    let ambiguous = api
        .send(
            "POST",
            "/repos/octo-org/octo-repo/issues/3/comments",
            Some(json!({"body": "a"})),
        )
        .await;
    assert_eq!(ambiguous.status, 502);
    assert_eq!(gh.comments(3).len(), 1, "the write landed although the answer was 502");
    let normal = api
        .send(
            "POST",
            "/repos/octo-org/octo-repo/issues/3/comments",
            Some(json!({"body": "b"})),
        )
        .await;
    assert_eq!(normal.status, 201);

    gh.fail_next("PUT", "/contents/a.txt", 503, 2);
    assert_eq!(api.put_file("a.txt", b"a", None, None).await.status, 503);
    assert_eq!(api.put_file("a.txt", b"a", None, None).await.status, 503);
    assert_eq!(gh.file("main", "a.txt"), None);
    assert_eq!(api.put_file("a.txt", b"a", None, None).await.status, 201);
    assert_eq!(gh.comments(3).len(), 2);
    gh.assert_conformant();
}

#[tokio::test]
async fn checker_catches_bad_bodies_undeclared_parameters_and_unexpected_requests() {
    let gh = fake().await;
    let api = Client::new(&gh);
    let bad = api
        .send(
            "POST",
            "/repos/octo-org/octo-repo/issues/5/comments",
            Some(json!({"body": 5})),
        )
        .await;
    assert_eq!(bad.status, 422, "GitHub refuses a body its schema rejects");
    assert!(gh.comments(5).is_empty());
    let undeclared = api
        .get("/repos/octo-org/octo-repo/issues/5/comments?per_page=10&sort=created")
        .await;
    assert_eq!(undeclared.status, 200);
    let unexpected = api.get("/repos/octo-org/octo-repo/pulls/5").await;
    assert_eq!(unexpected.status, 404);
    let no_agent = Client {
        user_agent: false,
        ..Client::new(&gh)
    };
    assert_eq!(no_agent.get("/repos/octo-org/octo-repo").await.status, 403);

    let violations = gh.violations();
    let has = |needle: &str| violations.iter().any(|v| v.contains(needle));
    assert!(
        has("request body /body: expected string, got number 5"),
        "{violations:#?}"
    );
    assert!(has("query parameter `sort` is not declared"), "{violations:#?}");
    assert!(
        has("GET /repos/octo-org/octo-repo/pulls/5 -> 404: unexpected request"),
        "{violations:#?}"
    );
    assert!(has("no User-Agent header"), "{violations:#?}");
    assert_eq!(violations.len(), 4, "{violations:#?}");

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gh.assert_conformant()));
    let message = panic.expect_err("assert_conformant panics on violations");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.starts_with("4 conformance problem(s)"), "{message}");
}

#[tokio::test]
async fn directories_list_their_children() {
    let gh = fake().await;
    gh.put_file("main", ".github/rollouts/a.yml", b"a");
    gh.put_file("main", ".github/rollouts/team/b.yml", b"b");
    let api = Client::new(&gh);
    let listing = api.get("/repos/octo-org/octo-repo/contents/.github/rollouts").await;
    assert_eq!(listing.status, 200);
    let entries: Vec<(&str, &str)> = listing
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(entries, [("a.yml", "file"), ("team", "dir")]);
    gh.assert_conformant();
}

/// A GraphQL request body: the query, with `variables`.
fn graphql(query: &str, variables: Value) -> Value {
    json!({ "query": query, "variables": variables })
}

#[tokio::test]
async fn graphql_answers_history_and_pull_requests_from_the_fakes_commits() {
    let gh = fake().await;
    let spec = ".github/rollouts/new-checkout.yml";
    gh.put_file("main", spec, b"version: 1\n");
    gh.add_commit(spec, "1111111111111111111111111111111111111111", Some(41));
    gh.add_commit(spec, "2222222222222222222222222222222222222222", Some(42));
    gh.put_file("main", "README.md", b"hello\n");
    let api = Client::new(&gh);
    let query = "query($owner: String!, $name: String!, $p: String!) {
      repository(owner: $owner, name: $name) {
        object(expression: \"refs/heads/main\") {
          __typename
          ... on Commit {
            latest: history(path: $p, first: 1) { nodes { oid associatedPullRequests(first: 1) { nodes { number } } } }
            all: history(path: $p, first: 10) { totalCount }
            none: history(path: \"docs\", first: 1) { nodes { oid } }
          }
        }
      }
    }";
    let variables = json!({ "owner": "Octo-Org", "name": "octo-repo", "p": spec });
    let answer = api.send("POST", "/graphql", Some(graphql(query, variables))).await;
    assert_eq!(answer.status, 200);
    let commit = &answer.body["data"]["repository"]["object"];
    assert_eq!(commit["__typename"], "Commit");
    let newest = &commit["latest"]["nodes"][0];
    assert_eq!(newest["oid"], "2222222222222222222222222222222222222222");
    assert_eq!(newest["associatedPullRequests"]["nodes"], json!([{ "number": 42 }]));
    assert_eq!(commit["all"]["totalCount"], 3, "the seed and two pull requests");
    assert_eq!(commit["none"]["nodes"], json!([]));
    assert!(answer.body.get("errors").is_none(), "{}", answer.body);

    // Another repository is null with GitHub's NOT_FOUND error; an unknown branch finds nothing.
    let query = "query($b: String) { repository(owner: \"octo-org\", name: \"nope\") { nameWithOwner } here: repository(owner: \"octo-org\", name: \"octo-repo\") { object(expression: $b) { oid } } }";
    let answer = api
        .send("POST", "/graphql", Some(graphql(query, json!({ "b": "gone" }))))
        .await;
    assert_eq!(
        answer.body["data"],
        json!({ "repository": null, "here": { "object": null } })
    );
    let error = &answer.body["errors"][0];
    assert_eq!(error["type"], "NOT_FOUND");
    assert_eq!(error["path"], json!(["repository"]));
    assert_eq!(
        error["message"],
        "Could not resolve to a Repository with the name 'octo-org/nope'."
    );
    assert_eq!(error["locations"], json!([{ "line": 1, "column": 21 }]));
    gh.assert_conformant();
}

#[tokio::test]
async fn graphql_refuses_what_github_refuses_and_records_it() {
    let gh = fake().await;
    let api = Client::new(&gh);
    let repo = "repository(owner: \"octo-org\", name: \"octo-repo\")";
    let commit = format!("{repo} {{ object(expression: \"main\") {{ ... on Commit {{");
    let cases: Vec<(String, Value, &str)> = vec![
        (
            format!("{{ {repo} {{ nope }} }}"),
            json!({}),
            "Field 'nope' doesn't exist on type 'Repository'",
        ),
        (
            "{ repository(owner: \"o\") { nameWithOwner } }".into(),
            json!({}),
            "Field 'repository' is missing required arguments: name",
        ),
        (
            format!("{{ {repo} {{ object(expression: \"main\") }} }}"),
            json!({}),
            "Field must have selections",
        ),
        (
            format!("{{ {repo} {{ nameWithOwner {{ x }} }} }}"),
            json!({}),
            "Selections can't be made on scalars",
        ),
        (
            format!("{{ {commit} history(path: \"a\") {{ totalCount }} }} }} }} }}"),
            json!({}),
            "You must provide a `first` or `last` value to properly paginate the `history` connection.",
        ),
        (
            format!("{{ {commit} history(first: 101) {{ totalCount }} }} }} }} }}"),
            json!({}),
            "Requesting 101 records on the `history` connection exceeds the `first` limit of 100 records.",
        ),
        (
            format!("query($n: Int) {{ {commit} history(first: $n) {{ totalCount }} }} }} }} }}"),
            json!({ "n": 500 }),
            "exceeds the `first` limit of 100 records",
        ),
        (
            format!("{{ {commit} history(first: 1, paths: \"a\") {{ totalCount }} }} }} }} }}"),
            json!({}),
            "Field 'history' doesn't accept argument 'paths'",
        ),
        (
            format!("{{ {repo} {{ object(expression: \"main\") {{ ... on PullRequest {{ number }} }} }} }}"),
            json!({}),
            "Fragment on PullRequest can't be spread inside GitObject",
        ),
        (
            format!("{{ {repo} {{ object(expression: \"main\") {{ ... on Nope {{ oid }} }} }} }}"),
            json!({}),
            "No such type Nope, so it can't be a fragment condition",
        ),
        (
            "{ repository(owner: $o, name: \"r\") { nameWithOwner } }".into(),
            json!({}),
            "Variable $o is used by anonymous query but not declared",
        ),
        (
            format!("query($x: String) {{ {repo} {{ nameWithOwner }} }}"),
            json!({}),
            "Variable $x is declared by anonymous query but not used",
        ),
        (
            "query($o: String!) { repository(owner: $o, name: \"r\") { nameWithOwner } }".into(),
            json!({}),
            "Variable $o of type String! was provided invalid value",
        ),
        (
            "query($o: String) { repository(owner: $o, name: \"r\") { nameWithOwner } }".into(),
            json!({ "o": "x" }),
            "Type mismatch on variable $o and argument (String / String!)",
        ),
        (
            format!("{{ a: {repo} {{ nameWithOwner }} a: repository(owner: \"x\", name: \"y\") {{ nameWithOwner }} }}"),
            json!({}),
            "Field 'a' has a field conflict",
        ),
        ("mutation { addStar }".into(), json!({}), "no mutation"),
        (format!("{{ {repo} {{"), json!({}), "Parse error on end of file"),
    ];
    for (i, (query, variables, words)) in cases.iter().enumerate() {
        let answer = api
            .send("POST", "/graphql", Some(graphql(query, variables.clone())))
            .await;
        assert_eq!(answer.status, 200, "{query}");
        let message = answer.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{query}: {}", answer.body);
        let data = &answer.body["data"];
        // A page size in a variable is only known when the query runs: it has data, the rest none.
        let executed = query.contains("$n");
        assert_eq!(data.is_null(), !executed, "{}", answer.body);
        let violations = gh.violations();
        assert_eq!(violations.len(), i + 1, "{violations:#?}");
        assert!(violations[i].contains(words), "{}", violations[i]);
    }
    let answer = api.send("POST", "/graphql", Some(json!({ "variables": {} }))).await;
    assert_eq!(
        answer.body["errors"][0]["message"],
        "A query attribute must be specified and must be a string."
    );
}
