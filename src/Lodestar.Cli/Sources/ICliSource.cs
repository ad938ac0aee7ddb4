using System.CommandLine;
using Lodestar.DependencyInjection;
using Lodestar.Registration;

namespace Lodestar.Cli.Sources;

/// <summary>
/// Plugs one registry into the CLI: the options it adds to each command, how to add it to the service collection from
/// them, what to check before anything is sent, and what a failed deregistration leaves behind.
/// </summary>
internal interface ICliSource
{
    /// <summary>Gets the source name accepted by <c>--source</c>.</summary>
    string Name { get; }

    /// <summary>Gets the options this source adds to <c>resolve</c> and <c>watch</c>.</summary>
    IReadOnlyList<Option> ResolveOptions { get; }

    /// <summary>Gets the options this source adds to <c>register</c> and <c>deregister</c>; empty when it cannot register.</summary>
    IReadOnlyList<Option> RegisterOptions { get; }

    /// <summary>Gets whether the source can register instances.</summary>
    bool CanRegister { get; }

    /// <summary>Adds the source (and its registrar, if any) to Lodestar from the parsed options.</summary>
    void Configure(ILodestarBuilder builder, ParseResult parseResult);

    /// <summary>
    /// Checks the source's settings before anything is sent, so a wrong address or a missing file fails at start with
    /// one line: materialises its options (running their validators) and checks what they name.
    /// </summary>
    /// <exception cref="CliException">A setting is wrong.</exception>
    void Check(IServiceProvider services, CliConsole console);

    /// <summary>Returns the secrets the source was configured with, to keep out of the output.</summary>
    IEnumerable<string?> Secrets(IServiceProvider services);

    /// <summary>Describes what stays in the registry when a registration could not be removed.</summary>
    string LeftBehind(IServiceProvider services, ServiceRegistration registration);
}
