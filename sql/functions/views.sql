-- Small pure helpers the API's view SQL (api/views/) calls while Postgres builds the JSON.
-- Single-expression SQL functions are inlined by the planner; coves_embed_view is PL/pgSQL and
-- runs once per hydrated post or comment.

-- An atproto datetime: UTC, milliseconds, 'Z'.
CREATE OR REPLACE FUNCTION coves_iso(ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- The URL a client fetches a blob from: the repo's PDS getBlob endpoint.
CREATE OR REPLACE FUNCTION coves_blob_url(pds text, did text, cid text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN cid IS NOT NULL AND did IS NOT NULL AND pds IS NOT NULL
                THEN rtrim(pds, '/') || '/xrpc/com.atproto.sync.getBlob?did=' || did || '&cid=' || cid END
$$;

-- An image's URL: IMAGE_CDN_URL/{did}/{cid} when a CDN is configured, else the PDS blob URL.
CREATE OR REPLACE FUNCTION coves_image_url(cdn text, pds text, did text, cid text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN cid IS NULL OR did IS NULL THEN NULL
                WHEN cdn IS NOT NULL THEN rtrim(cdn, '/') || '/' || did || '/' || cid
                ELSE coves_blob_url(pds, did, cid) END
$$;

-- The CID of a blob value: {"ref": {"$link": cid}}, or the legacy {"cid": cid}.
CREATE OR REPLACE FUNCTION coves_blob_cid(blob jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(blob) <> 'object' THEN NULL
                WHEN jsonb_typeof(blob -> 'ref') = 'object' THEN blob -> 'ref' ->> '$link'
                ELSE blob ->> 'cid' END
$$;

-- A post's kind for getAll's postType filter, from its embed: image, video, article (a link
-- card), microblog (a quoted post), text (no embed or anything else).
CREATE OR REPLACE FUNCTION coves_post_type(embed jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE embed ->> '$type'
                WHEN 'social.coves.embed.images' THEN 'image'
                WHEN 'social.coves.embed.video' THEN 'video'
                WHEN 'social.coves.embed.external' THEN 'article'
                WHEN 'social.coves.embed.post' THEN 'microblog'
                ELSE 'text' END
$$;

-- Image items as served: each keeps its blob ref and gains `thumb` and `fullsize` URLs.
CREATE OR REPLACE FUNCTION coves_images_view(images jsonb, cdn text, pds text, did text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(jsonb_agg(
               item || jsonb_strip_nulls(jsonb_build_object(
                   'thumb', coves_image_url(cdn, pds, did, coves_blob_cid(item -> 'image')),
                   'fullsize', coves_image_url(cdn, pds, did, coves_blob_cid(item -> 'image'))))
               ORDER BY ordinality), '[]'::jsonb)
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(images) = 'array' THEN images
                                     ELSE '[]'::jsonb END) WITH ORDINALITY AS e(item, ordinality)
     WHERE jsonb_typeof(item) = 'object'
$$;

-- A record's embed as served. It keeps its record `$type` (Coves clients switch on
-- 'social.coves.embed.external', not on a #view type) and gains URLs for its blobs, in the repo
-- that holds them (`did`, on its PDS `pds`, or the CDN): an external link card's `thumb` and a
-- video's `thumbnail` become URL strings (clients read them as strings), image items gain
-- `thumb`/`fullsize`, a video gains `url` (always its PDS: image CDNs do not stream video).
-- Unknown embed types pass through unchanged.
CREATE OR REPLACE FUNCTION coves_embed_view(embed jsonb, cdn text, pds text, did text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    external jsonb;
BEGIN
    IF embed IS NULL OR jsonb_typeof(embed) <> 'object' THEN
        RETURN NULL;
    END IF;
    CASE embed ->> '$type'
    WHEN 'social.coves.embed.images' THEN
        RETURN embed || jsonb_build_object('images', coves_images_view(embed -> 'images', cdn, pds, did));
    WHEN 'social.coves.embed.external' THEN
        IF jsonb_typeof(embed -> 'external') <> 'object' THEN
            RETURN embed;
        END IF;
        external := (embed -> 'external') - 'thumb'
            || jsonb_strip_nulls(jsonb_build_object(
                   'thumb', coves_image_url(cdn, pds, did, coves_blob_cid(embed -> 'external' -> 'thumb'))));
        IF external ? 'images' THEN
            external := jsonb_set(external, '{images}',
                                  coves_images_view(external -> 'images', cdn, pds, did));
        END IF;
        RETURN embed || jsonb_build_object('external', external);
    WHEN 'social.coves.embed.video' THEN
        RETURN (embed - 'thumbnail')
            || jsonb_strip_nulls(jsonb_build_object(
                   'url', coves_blob_url(pds, did, coves_blob_cid(embed -> 'video')),
                   'thumbnail', coves_image_url(cdn, pds, did, coves_blob_cid(embed -> 'thumbnail'))));
    ELSE
        RETURN embed;
    END CASE;
END
$$;

-- `obj` with `key` set to `value` unless `value` is NULL. For user data inside views (records,
-- facets, config schemas): unlike jsonb_strip_nulls it leaves nulls inside `value` alone.
CREATE OR REPLACE FUNCTION coves_with(obj jsonb, key text, value jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN value IS NULL THEN obj ELSE obj || jsonb_build_object(key, value) END $$;
