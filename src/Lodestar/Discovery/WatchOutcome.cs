namespace Lodestar.Discovery;

/// <summary>How one watch of a <see cref="ListWatchEndpointSource{TCursor}"/> ended without an error, and what the loop does next.</summary>
public enum WatchOutcome
{
    /// <summary>
    /// The stream ended (the server closed it, its timeout passed, the connection dropped cleanly): watch again from
    /// the last cursor. Counts as a reconnect. A watch that ends this way within a second without any progress is
    /// treated as a failure and backed off from, as client-go does with a "very short watch".
    /// </summary>
    Reconnect,

    /// <summary>
    /// One round of a polling protocol is done (a blocking query returned, a TTL elapsed): watch again from the last
    /// cursor at once. Not a reconnect.
    /// </summary>
    Continue,

    /// <summary>
    /// The cursor can no longer be resumed from (HTTP 410 Gone, a compacted revision, an index that went backwards):
    /// list again. Counts as a reconnect. A watch that asks for this without any progress since the list is backed off
    /// from first, so a registry that keeps expiring cursors cannot make the loop spin.
    /// </summary>
    Relist,

    /// <summary>The source lists on a schedule (a DNS TTL ran out): list again at once. Not a reconnect.</summary>
    Refresh,
}
