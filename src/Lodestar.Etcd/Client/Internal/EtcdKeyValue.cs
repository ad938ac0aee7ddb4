namespace Lodestar.Etcd.Client.Internal;

/// <summary>One key as etcd returned it, decoded from the gateway's base64.</summary>
internal sealed record EtcdKeyValue(string Key, byte[] Value, long ModRevision, long Lease);

/// <summary>The answer of a range request.</summary>
internal sealed record EtcdRangeResult(long Revision, IReadOnlyList<EtcdKeyValue> Kvs);

/// <summary>One change seen by a watch.</summary>
internal sealed record EtcdEvent(bool IsDelete, EtcdKeyValue Kv);

/// <summary>One message of a watch stream.</summary>
internal sealed record EtcdWatchResponse(long Revision, bool Created, bool Canceled, long CompactRevision, string? CancelReason, IReadOnlyList<EtcdEvent> Events)
{
    /// <summary>Gets whether etcd cancelled the watch because its start revision was compacted away.</summary>
    public bool IsCompacted => CompactRevision > 0;
}
