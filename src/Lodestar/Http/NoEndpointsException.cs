namespace Lodestar.Http;

/// <summary>
/// Thrown at once, without a network call, when a service has no endpoint to send a request to (or every endpoint
/// was already tried for this request).
/// </summary>
public sealed class NoEndpointsException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    public NoEndpointsException()
        : base("The service has no endpoints.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    public NoEndpointsException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the last attempt's error.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    /// <param name="innerException">The error of the last attempt, if any.</param>
    public NoEndpointsException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the service that has no endpoints.</summary>
    public string? ServiceName { get; init; }
}
