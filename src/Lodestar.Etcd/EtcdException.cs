namespace Lodestar.Etcd;

/// <summary>An etcd request failed: transport error, HTTP error or an error the gateway reported. Never carries secrets.</summary>
/// <remarks>
/// Transport failures are not kept as inner exceptions: .NET's messages may quote what the server sent (an invalid
/// status or header line), so only their redacted text travels, in the message and in <see cref="Cause"/>.
/// </remarks>
public sealed class EtcdException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="EtcdException"/> class.</summary>
    public EtcdException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="EtcdException"/> class with a message.</summary>
    /// <param name="message">What failed, naming the member.</param>
    public EtcdException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="EtcdException"/> class with a message and a cause.</summary>
    /// <param name="message">What failed, naming the member.</param>
    /// <param name="innerException">The cause; never one whose message may quote what the server sent.</param>
    public EtcdException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the member the failure came from (scheme, host and port), or <see langword="null"/> when unknown.</summary>
    public string? Address { get; init; }

    /// <summary>Gets the underlying cause in a few words (for example <c>Connection refused (127.0.0.1:2379)</c>), redacted; or <see langword="null"/>.</summary>
    public string? Cause { get; init; }

    /// <summary>Gets the gRPC status code the gateway reported (16 = unauthenticated), or 0 when none.</summary>
    public int GrpcCode { get; init; }

    /// <summary>Gets whether etcd rejected the auth token (expired or unknown), which a new token cures.</summary>
    public bool IsInvalidToken { get; init; }

    /// <summary>Gets whether the request got no answer from the endpoint (no connection, connection lost, TLS failure), which another cluster member may cure.</summary>
    public bool IsUnreachable { get; init; }
}
