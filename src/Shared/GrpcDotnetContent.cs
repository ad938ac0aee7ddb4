namespace Lodestar.Internal;

/// <summary>Reads what grpc-dotnet's request bodies are, for the retry and the reroute that send a call again.</summary>
internal static class GrpcDotnetContent
{
    /// <summary>
    /// Gets whether <paramref name="content"/> is grpc-dotnet's body for a call with a single request message (unary and
    /// server streaming), which serialises the message again each time it is written, so it can be sent more than once;
    /// a streaming request's body hands the call's writer one stream, once.
    /// </summary>
    public static bool IsSingleMessage(HttpContent? content)
        => content?.GetType() is { Name: "PushUnaryContent`2", Namespace: "Grpc.Net.Client.Internal" };
}
