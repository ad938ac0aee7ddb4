namespace Lodestar.Discovery;

/// <summary>
/// Thrown when a registry's answer (a response body, one watch event, one DNS message) is larger than the limit the
/// client reads, so that a broken or hostile server cannot make the process buffer without bound.
/// </summary>
public sealed class RegistryResponseTooLargeException : IOException
{
    /// <summary>Initializes a new instance.</summary>
    public RegistryResponseTooLargeException()
        : this("The registry's answer is larger than the configured limit.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What was too large, naming the server and the limit.</param>
    public RegistryResponseTooLargeException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What was too large, naming the server and the limit.</param>
    /// <param name="innerException">The underlying error.</param>
    public RegistryResponseTooLargeException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the limit, in bytes, that the answer exceeded.</summary>
    public long Limit { get; init; }
}
