using System.CommandLine;
using Lodestar.DependencyInjection;
using Lodestar.Registration;
using Lodestar.Xds;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli.Sources;

/// <summary>
/// The xDS source: a service is an xDS cluster name, whose endpoints come from the control plane named in the gRPC
/// xDS bootstrap (<c>--bootstrap</c>, else <c>GRPC_XDS_BOOTSTRAP</c> or <c>GRPC_XDS_BOOTSTRAP_CONFIG</c>).
/// </summary>
internal sealed class XdsCliSource : ICliSource
{
    /// <summary>Gets <c>--bootstrap</c>, shared with <c>lodestar xds dump</c>.</summary>
    public static readonly Option<string?> Bootstrap = new("--bootstrap")
    {
        Description = "xDS: bootstrap file (gRPC's format). Default: GRPC_XDS_BOOTSTRAP, else GRPC_XDS_BOOTSTRAP_CONFIG.",
    };

    /// <summary>Gets <c>--delta</c>, shared with <c>lodestar xds dump</c>.</summary>
    public static readonly Option<bool> Delta = new("--delta")
    {
        Description = "xDS: use incremental xDS (falls back to state of the world when the server does not offer it).",
    };

    public string Name => "xds";

    public IReadOnlyList<Option> ResolveOptions => [Bootstrap, Delta];

    public IReadOnlyList<Option> RegisterOptions => [];

    public bool CanRegister => false;

    public void Configure(ILodestarBuilder builder, ParseResult parseResult) => ConfigureXds(builder, parseResult);

    /// <summary>Adds xDS with the bootstrap and protocol the command line names.</summary>
    public static void ConfigureXds(ILodestarBuilder builder, ParseResult parseResult)
    {
        var bootstrap = parseResult.GetValue(Bootstrap);
        var delta = parseResult.GetValue(Delta);
        builder.AddXds(options =>
        {
            if (!string.IsNullOrEmpty(bootstrap))
            {
                options.BootstrapPath = bootstrap;
            }

            options.UseDelta |= delta;
        });
    }

    // Runs the validator, which loads the bootstrap: a missing file or an unsupported credential fails here, at once.
    public void Check(IServiceProvider services, CliConsole console) => _ = services.GetRequiredService<IOptions<XdsOptions>>().Value;

    public IEnumerable<string?> Secrets(IServiceProvider services)
    {
        // The token file's content is sent as a bearer token; keep it out of the output whatever a server echoes.
        var tokenPath = services.GetRequiredService<IOptions<XdsOptions>>().Value.TokenPath;
        return tokenPath is not null && File.Exists(tokenPath) ? [File.ReadAllText(tokenPath).Trim()] : [];
    }

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration) => throw new NotSupportedException();
}
