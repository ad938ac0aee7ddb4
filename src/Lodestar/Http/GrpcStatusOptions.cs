namespace Lodestar.Http;

/// <summary>
/// Which gRPC statuses count as a failure of the endpoint that answered, for passive outlier detection and circuit
/// breakers, on both the <see cref="HttpClient"/> handler path and the gRPC balancer path.
/// </summary>
/// <remarks>
/// A gRPC call answers HTTP 200 whatever its outcome and carries the outcome in <c>grpc-status</c>: in the response
/// headers for a Trailers-Only response, otherwise in the trailers after the last message. Without this setting every
/// gRPC error would look like a success to outlier detection.
/// </remarks>
public sealed class GrpcStatusOptions
{
    /// <summary>The gRPC status <c>UNAVAILABLE</c> (14): the server is shutting down, overloaded or not serving.</summary>
    public const int Unavailable = 14;

    /// <summary>The gRPC status <c>UNKNOWN</c> (2).</summary>
    public const int Unknown = 2;

    /// <summary>The gRPC status <c>RESOURCE_EXHAUSTED</c> (8).</summary>
    public const int ResourceExhausted = 8;

    /// <summary>The gRPC status <c>INTERNAL</c> (13).</summary>
    public const int Internal = 13;

    /// <summary>
    /// Gets or sets the <c>grpc-status</c> codes that count as a failure of the endpoint, or <see langword="null"/>
    /// (default) for <see cref="Unavailable"/> alone. <see cref="Unavailable"/> counts as a gateway failure (like HTTP
    /// 503); any other code in the list counts as a server error (like HTTP 500). Allowed: 1 to 16; an empty list counts
    /// no gRPC status as a failure.
    /// </summary>
    public IList<int>? FailureStatusCodes { get; set; }

    /// <summary>Gets whether <paramref name="statusCode"/> counts as a failure with these settings.</summary>
    /// <param name="statusCode">A <c>grpc-status</c> value.</param>
    /// <returns><see langword="true"/> when the status is one of <see cref="FailureStatusCodes"/>.</returns>
    public bool IsFailure(int statusCode)
    {
        var codes = FailureStatusCodes;
        if (codes is null)
        {
            return statusCode == Unavailable;
        }

        for (var i = 0; i < codes.Count; i++)
        {
            if (codes[i] == statusCode)
            {
                return true;
            }
        }

        return false;
    }
}
