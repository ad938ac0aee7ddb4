namespace Lodestar.Etcd.Client.Internal;

/// <summary>An etcd request failed: transport error, HTTP error or an error the gateway reported. Never carries secrets.</summary>
internal sealed class EtcdException : Exception
{
    public EtcdException()
    {
    }

    public EtcdException(string message)
        : base(message)
    {
    }

    public EtcdException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the gRPC status code the gateway reported (16 = unauthenticated), or 0 when none.</summary>
    public int GrpcCode { get; init; }

    /// <summary>Gets whether etcd rejected the auth token (expired or unknown), which a new token cures.</summary>
    public bool IsInvalidToken { get; init; }

    /// <summary>Gets whether the request got no answer from the endpoint (no connection, connection lost, TLS failure), which another cluster member may cure.</summary>
    public bool IsUnreachable { get; init; }
}
