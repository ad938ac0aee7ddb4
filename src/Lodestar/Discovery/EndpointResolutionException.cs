namespace Lodestar.Discovery;

/// <summary>
/// Thrown when a service's endpoints cannot be resolved: no source accepts the service, or the first snapshot did not
/// arrive in time. An <see cref="HttpRequestException"/> with <see cref="HttpRequestError.NameResolutionError"/>, so
/// code that handles a failed DNS lookup of an <see cref="HttpClient"/> request handles this too.
/// </summary>
public sealed class EndpointResolutionException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    public EndpointResolutionException()
        : this("The service's endpoints could not be resolved.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    public EndpointResolutionException(string message)
        : this(message, null)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    /// <param name="innerException">The last source error, if any.</param>
    public EndpointResolutionException(string message, Exception? innerException)
        : base(HttpRequestError.NameResolutionError, message, innerException)
    {
    }

    /// <summary>Gets the service that could not be resolved, when known.</summary>
    public string? ServiceName { get; init; }
}
