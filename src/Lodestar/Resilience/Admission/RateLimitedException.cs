namespace Lodestar.Resilience.Admission;

/// <summary>Thrown at once, without a network call, when the client-side rate limit of a service (<see cref="RateLimitOptions"/>) has no token left.</summary>
public sealed class RateLimitedException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    public RateLimitedException()
        : base("The service's client-side rate limit rejected the request.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    public RateLimitedException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and an inner exception.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public RateLimitedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the service whose limit rejected the request.</summary>
    public string? ServiceName { get; init; }
}
