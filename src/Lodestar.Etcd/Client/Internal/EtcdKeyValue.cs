namespace Lodestar.Etcd.Client.Internal;

/// <summary>One key as etcd returned it, decoded from the gateway's base64.</summary>
/// <param name="Key">The key, or empty when it could not be read (see <see cref="Problem"/>).</param>
/// <param name="Value">The value; empty when etcd sent none or it could not be read.</param>
/// <param name="ModRevision">The revision of the key's last change; 0 when absent.</param>
/// <param name="Lease">The lease the key is bound to; 0 for none.</param>
internal sealed record EtcdKeyValue(string Key, byte[] Value, long ModRevision, long Lease)
{
    /// <summary>
    /// Gets why the entry cannot be used (not an object, key or value not valid base64, wrong types), or
    /// <see langword="null"/> when it was read whole.
    /// </summary>
    public string? Problem { get; init; }

    /// <summary>Gets whether <see cref="Key"/> was read, so that a problem can be pinned to it.</summary>
    public bool HasKey => Key.Length > 0;
}

/// <summary>The answer of a range request.</summary>
/// <param name="Revision">The store revision the range was read at (<c>header.revision</c>).</param>
/// <param name="Kvs">The keys in order, including entries that could not be read (with a <see cref="EtcdKeyValue.Problem"/>).</param>
/// <param name="Address">The member that answered, for messages.</param>
internal sealed record EtcdRangeResult(long Revision, IReadOnlyList<EtcdKeyValue> Kvs, string Address);

/// <summary>One change seen by a watch.</summary>
internal sealed record EtcdEvent(bool IsDelete, EtcdKeyValue Kv);

/// <summary>One message of a watch stream.</summary>
internal sealed record EtcdWatchResponse(long Revision, bool Created, bool Canceled, long CompactRevision, string? CancelReason, IReadOnlyList<EtcdEvent> Events)
{
    /// <summary>Gets whether etcd cancelled the watch because its start revision was compacted away.</summary>
    public bool IsCompacted => CompactRevision > 0;

    /// <summary>
    /// Gets whether this is a progress notification: a message with no events that only says the stream is alive (and
    /// how far the store has got), sent because the watch asked for <c>progress_notify</c>.
    /// </summary>
    public bool IsProgressNotify => !Created && !Canceled && CompactRevision == 0 && Events.Count == 0;
}
