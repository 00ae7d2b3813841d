//! The `Catalog` conformance cases of accounts, tokens and what owners
//! may see of each other's content.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::model::{
    Concat, FileId, NewToken, Owner, Revoke, Timestamp, TokenId, UploadMode, Usage,
};

use super::{hash_of, owner, stored_file, upload};

fn token(owner: &Owner, secret: u8, quota: Option<u64>, admin: bool) -> NewToken {
    NewToken {
        id: TokenId::random(),
        secret_hash: [secret; 32],
        owner: owner.clone(),
        quota,
        admin,
        created_at: Timestamp(1_000 + u64::from(secret) as i64),
    }
}

pub async fn tokens_are_found_by_their_hash_until_revoked(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    assert!(cat.find_token(&[1; 32]).await.unwrap().is_none());
    let a = token(&ann, 1, None, false);
    let b1 = token(&bob, 2, None, false);
    let b2 = token(&bob, 3, None, false);
    for t in [&a, &b1, &b2] {
        cat.insert_token(t).await.unwrap();
    }
    let found = cat.find_token(&[1; 32]).await.unwrap().unwrap();
    assert_eq!((found.id, found.account.owner), (a.id.clone(), ann.clone()));
    assert_eq!(found.revoked_at, None);
    // Oldest first.
    let listed: Vec<TokenId> = cat
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, vec![a.id.clone(), b1.id.clone(), b2.id.clone()]);

    // One token, then every token of an owner; revoking again changes nothing.
    let at = Timestamp(9_000);
    assert_eq!(
        cat.revoke_tokens(&Revoke::Token(a.id.clone()), at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cat.revoke_tokens(&Revoke::Token(a.id.clone()), at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        cat.find_token(&[1; 32]).await.unwrap().unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        cat.revoke_tokens(&Revoke::Owner(bob.clone()), at)
            .await
            .unwrap(),
        2
    );
    assert!(
        cat.list_tokens()
            .await
            .unwrap()
            .iter()
            .all(|t| t.revoked_at == Some(at))
    );
    assert_eq!(
        cat.revoke_tokens(&Revoke::Owner(owner("nobody")), at)
            .await
            .unwrap(),
        0
    );
}

pub async fn accounts_keep_their_quota_and_admin(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    assert_eq!(cat.account(&ann).await.unwrap(), None);
    cat.insert_token(&token(&ann, 1, Some(100), false))
        .await
        .unwrap();
    let account = cat.account(&ann).await.unwrap().unwrap();
    assert_eq!((account.quota, account.admin), (Some(100), false));
    // A second token without a quota keeps the quota; admin is added.
    cat.insert_token(&token(&ann, 2, None, true)).await.unwrap();
    let account = cat.account(&ann).await.unwrap().unwrap();
    assert_eq!((account.quota, account.admin), (Some(100), true));
    // A third sets a new quota and keeps admin.
    cat.insert_token(&token(&ann, 3, Some(7), false))
        .await
        .unwrap();
    let account = cat.account(&ann).await.unwrap().unwrap();
    assert_eq!((account.quota, account.admin), (Some(7), true));
    // Every token shows the account as it is now.
    let found = cat.find_token(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found.account, account);
    // The same secret cannot be recorded twice.
    assert!(
        cat.insert_token(&token(&ann, 3, None, false))
            .await
            .is_err()
    );
}

pub async fn revoking_the_last_token_does_not_open_up(cat: Arc<dyn Catalog>) {
    assert!(!cat.has_tokens().await.unwrap());
    let t = token(&owner("ann"), 1, None, false);
    cat.insert_token(&t).await.unwrap();
    assert!(cat.has_tokens().await.unwrap());
    cat.revoke_tokens(&Revoke::Token(t.id), Timestamp(2))
        .await
        .unwrap();
    assert!(cat.has_tokens().await.unwrap());
}

pub async fn the_signing_key_is_stored_once(cat: Arc<dyn Catalog>) {
    let first = cat.signing_key(&[7; 32]).await.unwrap();
    assert_eq!(first, [7; 32]);
    assert_eq!(cat.signing_key(&[8; 32]).await.unwrap(), [7; 32]);
}

pub async fn owned_blobs_need_a_file_of_the_owner(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let f = stored_file(cat.as_ref(), &ann, "a", "owned", 1).await;
    let hash = hash_of("owned");
    assert_eq!(
        cat.find_owned_blob(&ann, &hash).await.unwrap(),
        Some(f.blob.clone())
    );
    assert_eq!(cat.find_owned_blob(&bob, &hash).await.unwrap(), None);
    assert_eq!(
        cat.find_owned_blob(&ann, &hash_of("other")).await.unwrap(),
        None
    );
    // Bob's own file on the same content makes it his too.
    cat.insert_file(&super::new_file(&bob, "b", 2), &f.blob.id)
        .await
        .unwrap();
    assert_eq!(
        cat.find_owned_blob(&bob, &hash).await.unwrap(),
        Some(f.blob.clone())
    );
    // Ann's file gone, the content is no longer hers.
    cat.delete_file(&ann, &f.id).await.unwrap().unwrap();
    assert_eq!(cat.find_owned_blob(&ann, &hash).await.unwrap(), None);
}

pub async fn files_are_made_public_by_their_owner_only(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let f = stored_file(cat.as_ref(), &ann, "a", "pub", 1).await;
    assert!(!f.public);
    assert_eq!(cat.set_file_public(&bob, &f.id, true).await.unwrap(), None);
    assert!(!cat.get_file(&f.id).await.unwrap().unwrap().public);
    let shown = cat
        .set_file_public(&ann, &f.id, true)
        .await
        .unwrap()
        .unwrap();
    assert!(shown.public);
    assert!(cat.get_file(&f.id).await.unwrap().unwrap().public);
    let hidden = cat
        .set_file_public(&ann, &f.id, false)
        .await
        .unwrap()
        .unwrap();
    assert!(!hidden.public);
    assert_eq!(
        cat.set_file_public(&ann, &FileId::random(), true)
            .await
            .unwrap(),
        None
    );
}

pub async fn usage_counts_files_and_unfinished_uploads(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let now = Timestamp(10_000);
    assert_eq!(cat.usage(&ann, now, true).await.unwrap(), Usage::default());
    // Two files of 10 bytes each (stored_file's size), one on shared content.
    let f = stored_file(cat.as_ref(), &ann, "a", "u1", 1).await;
    cat.insert_file(&super::new_file(&ann, "a2", 2), &f.blob.id)
        .await
        .unwrap();
    stored_file(cat.as_ref(), &bob, "b", "u2", 3).await;
    // Unfinished uploads: one of 1000 bytes, one of unknown length holding
    // 300, one expired (not counted).
    let mut live = upload(&ann, "x", Some(1000), None);
    live.expires_at = Timestamp(20_000);
    let mut deferred = upload(&ann, "y", None, None);
    deferred.mode = crate::model::UploadMode::Append;
    deferred.expires_at = Timestamp(20_000);
    let mut expired = upload(&ann, "z", Some(5000), None);
    expired.expires_at = Timestamp(5_000);
    for u in [&live, &deferred, &expired] {
        cat.insert_upload(u).await.unwrap();
    }
    cat.record_append(&deferred.id, 0, 300, &[], None, Timestamp(20_000))
        .await
        .unwrap();
    let usage = cat.usage(&ann, now, true).await.unwrap();
    assert_eq!(
        usage,
        Usage {
            stored: 20,
            uploading: 1300,
            uploads: 2
        }
    );
    // Without adding up the files.
    assert_eq!(
        cat.usage(&ann, now, false).await.unwrap(),
        Usage { stored: 0, ..usage }
    );
    assert_eq!(cat.usage(&bob, now, true).await.unwrap().stored, 10);
}

pub async fn usage_counts_finals_beyond_their_parts(cat: Arc<dyn Catalog>) {
    let ann = owner("ann");
    let now = Timestamp(10_000);
    let part = |size| {
        let mut u = upload(&ann, "part", Some(size), None);
        u.mode = UploadMode::Append;
        u.concat = Concat::Partial;
        u.expires_at = Timestamp(20_000);
        u
    };
    let (a, b) = (part(100), part(50));
    let mut fin = upload(&ann, "whole", Some(350), None);
    fin.mode = UploadMode::Append;
    fin.expires_at = Timestamp(20_000);
    // `a` named three times: the final adds 2 × 100 to what its parts hold.
    fin.concat = Concat::Final(vec![a.id.clone(), a.id.clone(), a.id.clone(), b.id.clone()]);
    for u in [&a, &b, &fin] {
        cat.insert_upload(u).await.unwrap();
    }
    assert_eq!(
        cat.usage(&ann, now, false).await.unwrap(),
        Usage {
            stored: 0,
            uploading: 150 + 200,
            uploads: 3
        }
    );
    // A final of unknown length adds nothing until it is known; once its
    // parts are gone it counts whole.
    let mut open = upload(&ann, "open", None, None);
    open.mode = UploadMode::Append;
    open.expires_at = Timestamp(20_000);
    open.concat = Concat::Final(vec![b.id.clone()]);
    cat.insert_upload(&open).await.unwrap();
    assert_eq!(cat.usage(&ann, now, false).await.unwrap().uploading, 350);
    assert_eq!(cat.usage(&ann, now, false).await.unwrap().uploads, 4);
    cat.delete_upload(&a.id).await.unwrap();
    assert_eq!(
        cat.usage(&ann, now, false).await.unwrap().uploading,
        50 + 300
    );
}

pub async fn files_show_their_own_verified_digests(cat: Arc<dyn Catalog>) {
    let (ann, bob) = (owner("ann"), owner("bob"));
    let f = stored_file(cat.as_ref(), &ann, "a", "shared", 1).await;
    // The content's digests become known (from ann's claims, say).
    cat.set_blob_checksums(&f.blob.id, Some([1; 16]), Some([2; 32]))
        .await
        .unwrap();
    let mut claimed = super::new_file(&bob, "b", 2);
    claimed.md5 = Some([1; 16]);
    let bobs = cat.insert_file(&claimed, &f.blob.id).await.unwrap();
    assert_eq!((bobs.md5, bobs.sha256), (Some([1; 16]), None));
    let plain = cat
        .insert_file(&super::new_file(&bob, "c", 3), &f.blob.id)
        .await
        .unwrap();
    for (id, md5) in [(&bobs.id, Some([1; 16])), (&plain.id, None)] {
        let got = cat.get_file(id).await.unwrap().unwrap();
        assert_eq!((got.md5, got.sha256), (md5, None), "{id}");
        assert_eq!(got.blob.md5, Some([1; 16]), "the blob keeps its own");
    }
    let listed = cat
        .list_files(&crate::model::FileQuery {
            owner: bob.clone(),
            search: None,
            cursor: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(listed.files.iter().all(|f| f.sha256.is_none()));
}
