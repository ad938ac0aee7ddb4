using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Http.Internal;

/// <summary>
/// Puts a Lodestar client's handler where it sees the logical URI first, whatever order the handlers were added in.
/// </summary>
/// <remarks>
/// <para>
/// Aspire's service defaults add Microsoft.Extensions.ServiceDiscovery's resolving handler to every client through
/// <c>ConfigureHttpClientDefaults</c>, and the factory applies those defaults before a named client's own handlers.
/// That handler rewrites <c>http://orders/</c> to one address it picked itself, so Lodestar, behind it, would only see
/// physical addresses: no balancing policy, outlier detection or retry on another endpoint would apply.
/// </para>
/// <para>
/// Lodestar resolves a client's logical URIs itself, so on a Lodestar client the resolving handler has nothing left
/// to do: it is removed, and Lodestar's handler takes the place of the first one that stood before it. Handlers that
/// do not rewrite the URI (the standard resilience handler, logging) keep their places. The action runs last among
/// the client's builder actions (it is added by a post-configuration), so it sees every handler added in any order.
/// </para>
/// </remarks>
internal static partial class HandlerPlacement
{
    /// <summary>The full name of Microsoft.Extensions.ServiceDiscovery's resolving handler, matched by name so core needs no reference to that package.</summary>
    internal const string ServiceDiscoveryResolvingHandler = "Microsoft.Extensions.ServiceDiscovery.Http.ResolvingHttpDelegatingHandler";

    /// <summary>Moves the Lodestar handler in front of every handler that would rewrite the logical URI before it.</summary>
    /// <param name="builder">The client's handler builder, after every other builder action ran.</param>
    public static void Apply(HttpMessageHandlerBuilder builder)
    {
        var handlers = builder.AdditionalHandlers;
        var lodestar = -1;
        var first = -1;
        var resolvers = 0;
        for (var i = 0; i < handlers.Count; i++)
        {
            var isLodestar = handlers[i] is LodestarHandler;
            var isResolver = IsServiceDiscoveryResolver(handlers[i]);
            if (isLodestar && lodestar < 0)
            {
                lodestar = i;
            }

            if (isResolver)
            {
                resolvers++;
            }

            if ((isLodestar || isResolver) && first < 0)
            {
                first = i;
            }
        }

        if (lodestar < 0 || resolvers == 0)
        {
            return;
        }

        var ours = handlers[lodestar];
        for (var i = handlers.Count - 1; i >= first; i--)
        {
            if (i == lodestar || IsServiceDiscoveryResolver(handlers[i]))
            {
                handlers.RemoveAt(i);
            }
        }

        handlers.Insert(first, ours);
        var logger = builder.Services.GetService<ILoggerFactory>()?.CreateLogger("Lodestar.Http") ?? NullLogger.Instance;
        Log.ResolvingHandlerRemoved(logger, builder.Name ?? string.Empty, resolvers);
    }

    private static bool IsServiceDiscoveryResolver(DelegatingHandler handler)
        => string.Equals(handler.GetType().FullName, ServiceDiscoveryResolvingHandler, StringComparison.Ordinal);

    private static partial class Log
    {
        [LoggerMessage(63, LogLevel.Debug,
            "HTTP client '{Client}': removed {Count} Microsoft.Extensions.ServiceDiscovery resolving handler(s) from its chain; Lodestar resolves this client's logical URIs itself and now sees them first.",
            EventName = "ServiceDiscoveryHandlerReplaced")]
        public static partial void ResolvingHandlerRemoved(ILogger logger, string client, int count);
    }
}
