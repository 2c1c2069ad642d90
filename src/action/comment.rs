//! One comment per pull request, found again by a hidden marker and its author, edited in place.

use crate::github::{GitHub, GitHubError};

/// The hidden marker that makes a comment flagramp's.
pub const MARKER: &str = "<!-- flagramp:report -->";

/// What happened to the comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new comment.
    Created,
    /// The existing comment was edited.
    Updated,
    /// The existing comment already said this: nothing was written.
    Unchanged,
}

async fn find(github: &GitHub, pr: u64, author: &str) -> Result<Option<crate::github::Comment>, GitHubError> {
    Ok(github
        .comments(pr)
        .await?
        .into_iter()
        .find(|c| c.author == author && c.body.contains(MARKER)))
}

/// Creates or edits flagramp's comment on `pr`. A create whose outcome is unknown (a 5xx or a
/// broken connection) is never simply retried: the comments are searched again first, so a
/// comment that did get created is edited rather than duplicated.
pub async fn upsert(github: &GitHub, pr: u64, author: &str, body: &str) -> Result<Upserted, GitHubError> {
    if let Some(existing) = find(github, pr, author).await? {
        if existing.body == body {
            return Ok(Upserted::Unchanged);
        }
        github.update_comment(existing.id, body).await?;
        return Ok(Upserted::Updated);
    }
    match github.create_comment(pr, body).await {
        Ok(_) => Ok(Upserted::Created),
        Err(GitHubError::Other(first)) => {
            tracing::warn!(pr, error = %crate::escape::plain(&first), "creating the comment failed ambiguously; searching again before retrying");
            match find(github, pr, author).await? {
                Some(existing) if existing.body == body => Ok(Upserted::Created),
                Some(existing) => {
                    github.update_comment(existing.id, body).await?;
                    Ok(Upserted::Created)
                }
                None => github.create_comment(pr, body).await.map(|_| Upserted::Created),
            }
        }
        Err(e) => Err(e),
    }
}
