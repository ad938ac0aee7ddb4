using System.Net;

namespace Lodestar.Consul;

/// <summary>
/// A Consul call failed: the agent was unreachable, answered with an error status, or sent a malformed answer. The
/// message names the agent's address and never contains the ACL token.
/// </summary>
public sealed class ConsulException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public ConsulException()
        : this("A Consul call failed.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the agent.</param>
    public ConsulException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What went wrong, naming the agent.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ConsulException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the HTTP status the agent answered with, or <see langword="null"/> when it did not answer.</summary>
    public HttpStatusCode? StatusCode { get; init; }
}
