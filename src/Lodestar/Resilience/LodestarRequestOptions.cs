namespace Lodestar.Resilience;

/// <summary>Per-request switches, set through <see cref="HttpRequestMessage.Options"/>.</summary>
public static class LodestarRequestOptions
{
    /// <summary>
    /// When set to <see langword="true"/>, the request may be retried (and hedged) even though its method is not
    /// idempotent: the caller states that sending it twice is harmless.
    /// </summary>
    public static readonly HttpRequestOptionsKey<bool> AllowRetries = new("Lodestar.AllowRetries");
}
