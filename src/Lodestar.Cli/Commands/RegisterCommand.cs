using System.CommandLine;
using System.Globalization;
using Lodestar.Cli.Sources;
using Lodestar.Endpoints;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Commands;

/// <summary>
/// <c>lodestar register</c> keeps an instance registered until Ctrl+C, then removes it; <c>lodestar deregister</c>
/// removes one by ID. Both use the <see cref="IServiceRegistrar"/> that the chosen source adds.
/// </summary>
internal static class RegisterCommand
{
    private static readonly Option<string> s_endpoint = new("--endpoint") { Description = "The instance's host:port as others should reach it.", Required = true };
    private static readonly Option<string?> s_deregisterEndpoint = new("--endpoint") { Description = "The instance's host:port, to derive the default ID." };
    private static readonly Option<int> s_ttl = new("--ttl") { Description = "Seconds the registration survives without heartbeats (1-86400).", DefaultValueFactory = _ => 15 };
    private static readonly Option<string?> s_instanceId = new("--id") { Description = "Instance ID (default: service-host-port)." };

    /// <summary>How long deregistration may take after Ctrl+C.</summary>
    private static readonly TimeSpan s_deregisterTimeout = TimeSpan.FromSeconds(10);

    public static Command CreateRegister(CliRun run)
    {
        var command = new Command("register", "Register an instance and keep it alive until Ctrl+C, then deregister it.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddOptions(command, registering: true, s_endpoint, s_ttl, s_instanceId);
        command.SetAction((parseResult, cancellationToken) => RegisterAsync(run, parseResult, cancellationToken));
        return command;
    }

    public static Command CreateDeregister(CliRun run)
    {
        var command = new Command("deregister", "Remove an instance's registration by service and endpoint or ID. Exit code 1 when there was nothing to remove.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddOptions(command, registering: true, s_deregisterEndpoint, s_instanceId);
        command.SetAction((parseResult, cancellationToken) => DeregisterAsync(run, parseResult, cancellationToken));
        return command;
    }

    private static async Task<int> RegisterAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var service = parseResult.GetValue(ResolveCommand.Service)!;
        if (!DiscoveredEndpoint.TryParse(parseResult.GetValue(s_endpoint), 0, out var endpoint, out var error))
        {
            throw new CliException($"--endpoint: {error}.");
        }

        var ttl = parseResult.GetValue(s_ttl);
        if (ttl is < 1 or > 86400)
        {
            throw new CliException($"--ttl is {ttl.ToString(CultureInfo.InvariantCulture)}; it must be 1 to 86400 seconds.");
        }

        var source = CliSources.Selected(parseResult, registering: true);
        await using var services = CliHost.Build(parseResult, run, source);
        var registrar = GetRegistrar(services, source);
        var registration = new ServiceRegistration
        {
            ServiceName = service,
            InstanceId = parseResult.GetValue(s_instanceId),
            Host = endpoint.Host,
            Port = endpoint.Port,
            Ttl = TimeSpan.FromSeconds(ttl),
            Tags = ConsulCliSource.RegisterTags(parseResult),
            HealthCheckPath = ConsulCliSource.HttpCheck(parseResult),
        };
        var id = registration.EffectiveInstanceId;

        IServiceRegistrationHandle handle;
        try
        {
            handle = await registrar.RegisterAsync(registration, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C while registering: the registry may already hold the instance, so remove it.
            await RemoveHalfRegisteredAsync(run, registrar, source, services, registration);
            throw;
        }
        catch (Exception ex)
        {
            throw new CliException($"Could not register {id} ({endpoint.Address}) in {source.Name}: {ex.Message}", ex);
        }

        run.Console.WriteNote($"Registered {id} ({endpoint.Address}) in {source.Name}; Ctrl+C deregisters.");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            using var deadline = new CancellationTokenSource(s_deregisterTimeout);
            await handle.DeregisterAsync(deadline.Token);
        }
        catch (Exception ex)
        {
            throw new CliException(
                $"Could not deregister {id} from {source.Name}: {ex.Message}. Left behind: {source.LeftBehind(services, registration)}; "
                + $"remove it with '{CliApp.Name} deregister {service} --source {source.Name} --id {id}'.", ex);
        }
        finally
        {
            await DisposeQuietlyAsync(handle);
        }

        run.Console.WriteNote($"Deregistered {id} from {source.Name}.");
        return CliApp.SuccessExitCode;
    }

    private static async Task<int> DeregisterAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var service = parseResult.GetValue(ResolveCommand.Service)!;
        var id = parseResult.GetValue(s_instanceId);
        if (id is null)
        {
            if (!DiscoveredEndpoint.TryParse(parseResult.GetValue(s_deregisterEndpoint), 0, out var endpoint, out var error))
            {
                throw new CliException($"Give --id, or --endpoint host:port to derive it ({error}).");
            }

            id = new ServiceRegistration { ServiceName = service, Host = endpoint.Host, Port = endpoint.Port }.EffectiveInstanceId;
        }

        var source = CliSources.Selected(parseResult, registering: true);
        await using var services = CliHost.Build(parseResult, run, source);
        var registrar = GetRegistrar(services, source);
        bool removed;
        try
        {
            removed = await registrar.DeregisterAsync(service, id, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new CliException(
                $"Could not deregister {id} from {source.Name}: {ex.Message}. Nothing was removed: if {source.Name} holds instance '{id}' of service '{service}', it stays there.", ex);
        }

        if (!removed)
        {
            run.Console.WriteNote($"Nothing was removed: {source.Name} holds no instance '{id}' of service '{service}'.");
            return CliApp.NotDoneExitCode;
        }

        run.Console.WriteNote($"Deregistered {id} from {source.Name}.");
        return CliApp.SuccessExitCode;
    }

    private static async Task RemoveHalfRegisteredAsync(CliRun run, IServiceRegistrar registrar, ICliSource source, IServiceProvider services, ServiceRegistration registration)
    {
        var id = registration.EffectiveInstanceId;
        try
        {
            using var deadline = new CancellationTokenSource(s_deregisterTimeout);
            if (await registrar.DeregisterAsync(registration.ServiceName, id, deadline.Token))
            {
                run.Console.WriteNote($"Registration interrupted; removed {id} from {source.Name}.");
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            run.Console.WriteWarning(run.Redact($"Registration interrupted, and {id} could not be removed from {source.Name}: {ex.Message}. If it was registered, {source.LeftBehind(services, registration)}."));
        }
    }

    private static IServiceRegistrar GetRegistrar(IServiceProvider services, ICliSource source)
        => services.GetServices<IServiceRegistrar>().FirstOrDefault(r => string.Equals(r.Name, source.Name, StringComparison.OrdinalIgnoreCase))
           ?? throw new CliException($"Source '{source.Name}' cannot register instances.");

    private static async Task DisposeQuietlyAsync(IServiceRegistrationHandle handle)
    {
        try
        {
            await handle.DisposeAsync();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Disposing repeats the deregistration that just failed or succeeded; what matters was reported above.
        }
    }
}
