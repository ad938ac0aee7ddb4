using System.CommandLine;
using System.Globalization;
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
    private static readonly Option<string> Endpoint = new("--endpoint") { Description = "The instance's host:port as others should reach it.", Required = true };
    private static readonly Option<int> Ttl = new("--ttl") { Description = "Seconds the registration survives without heartbeats.", DefaultValueFactory = _ => 15 };
    private static readonly Option<string?> InstanceId = new("--id") { Description = "Instance ID (default: service-host-port)." };
    private static readonly Option<string[]> Tags = new("--tag") { Description = "Tag(s) to publish (Consul).", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<string?> Check = new("--http-check") { Description = "HTTP health-check path the registry calls (Consul); default a TTL check." };

    public static Command CreateRegister()
    {
        var command = new Command("register", "Register an instance and keep it alive until Ctrl+C, then deregister it.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddSourceOptions(command);
        command.Options.Add(Endpoint);
        command.Options.Add(Ttl);
        command.Options.Add(InstanceId);
        command.Options.Add(Tags);
        command.Options.Add(Check);
        command.SetAction(RegisterAsync);
        return command;
    }

    public static Command CreateDeregister()
    {
        var command = new Command("deregister", "Remove an instance's registration by service and endpoint or ID.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddSourceOptions(command);
        command.Options.Add(new Option<string>("--endpoint") { Description = "The instance's host:port (to derive the default ID)." });
        command.Options.Add(InstanceId);
        command.SetAction(DeregisterAsync);
        return command;
    }

    private static async Task<int> RegisterAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var services = CliHost.Build(parseResult);
        var registrar = GetRegistrar(services, parseResult);
        var service = parseResult.GetValue(ResolveCommand.Service)!;
        if (!DiscoveredEndpoint.TryParse(parseResult.GetValue(Endpoint), 0, out var endpoint, out var error))
        {
            throw new CliException($"--endpoint: {error}.");
        }

        var ttl = parseResult.GetValue(Ttl);
        if (ttl is < 1 or > 86400)
        {
            throw new CliException($"--ttl is {ttl.ToString(CultureInfo.InvariantCulture)}; it must be 1 to 86400 seconds.");
        }

        var registration = new ServiceRegistration
        {
            ServiceName = service,
            InstanceId = parseResult.GetValue(InstanceId),
            Host = endpoint.Host,
            Port = endpoint.Port,
            Ttl = TimeSpan.FromSeconds(ttl),
            Tags = parseResult.GetValue(Tags) ?? [],
            HealthCheckPath = parseResult.GetValue(Check),
        };
        var handle = await registrar.RegisterAsync(registration, cancellationToken);
        await Console.Error.WriteLineAsync($"Registered {registration.EffectiveInstanceId} ({endpoint.Address}) in {registrar.Name}; Ctrl+C deregisters.");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await handle.DeregisterAsync(deadline.Token);
        await handle.DisposeAsync();
        await Console.Error.WriteLineAsync($"Deregistered {registration.EffectiveInstanceId}.");
        return 0;
    }

    private static async Task<int> DeregisterAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var services = CliHost.Build(parseResult);
        var registrar = GetRegistrar(services, parseResult);
        var service = parseResult.GetValue(ResolveCommand.Service)!;
        var id = parseResult.GetValue(InstanceId);
        if (id is null)
        {
            var endpointText = parseResult.GetValue<string>("--endpoint");
            if (!DiscoveredEndpoint.TryParse(endpointText, 0, out var endpoint, out var error))
            {
                throw new CliException($"Give --id, or --endpoint host:port to derive it ({error}).");
            }

            id = new ServiceRegistration { ServiceName = service, Host = endpoint.Host, Port = endpoint.Port }.EffectiveInstanceId;
        }

        await registrar.DeregisterAsync(service, id, cancellationToken);
        await Console.Error.WriteLineAsync($"Deregistered {id} from {registrar.Name}.");
        return 0;
    }

    private static IServiceRegistrar GetRegistrar(IServiceProvider services, ParseResult parseResult)
    {
        var source = parseResult.GetValue(CliHost.Source);
        var registrars = services.GetServices<IServiceRegistrar>().ToList();
        return registrars.FirstOrDefault(r => string.Equals(r.Name, source, StringComparison.OrdinalIgnoreCase))
               ?? throw new CliException($"Source '{source ?? "configuration"}' cannot register instances; use --source with one of: {(registrars.Count == 0 ? "consul, etcd" : string.Join(", ", registrars.Select(r => r.Name)))}.");
    }
}
