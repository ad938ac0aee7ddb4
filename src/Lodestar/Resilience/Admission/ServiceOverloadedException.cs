namespace Lodestar.Resilience.Admission;

/// <summary>
/// Thrown at once, without a network call, when a service already has as many requests in flight and waiting as
/// <see cref="ConcurrencyLimitOptions"/> allows.
/// </summary>
public sealed class ServiceOverloadedException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    public ServiceOverloadedException()
        : base("The service has too many requests in flight.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    public ServiceOverloadedException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and an inner exception.</summary>
    /// <param name="message">What went wrong, naming the service.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ServiceOverloadedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the service whose limit rejected the request.</summary>
    public string? ServiceName { get; init; }
}
